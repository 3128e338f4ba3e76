/*
 * util: small helpers with no daemon state.
 *
 * Allocation failures abort (a bug-class failure: the process cannot go on
 * without memory, and every caller checking for NULL would only add paths that
 * are never tested). Parsers of sizes and durations are pure and return -1 on
 * bad input, leaving *out untouched.
 */
#ifndef POSTERN_UTIL_H
#define POSTERN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a newly allocated string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* In place ASCII lower-casing; returns s. */
char *str_lower(char *s);
/* Copies at most dstsize-1 bytes and NUL-terminates; returns strlen(src). */
size_t str_copy(char *dst, const char *src, size_t dstsize);
/* Removes leading and trailing ASCII white space in place; returns s. */
char *str_trim(char *s);
int str_casecmp_n(const char *a, const char *b, size_t n);

/* "10", "10k", "50M", "1G" (powers of 1024). */
int parse_size(const char *s, uint64_t *out);
/* "30", "30s", "5m", "2h", "1d", "250ms" into milliseconds. */
int parse_duration_ms(const char *s, uint64_t *out);
int parse_uint(const char *s, uint64_t max, uint64_t *out);
int parse_bool(const char *s, int *out);

/* Monotonic and wall clocks in milliseconds. */
uint64_t now_ms(void);
uint64_t wall_ms(void);

/* Writes all of buf or returns -1 (errno set). */
int write_all(int fd, const void *buf, size_t n);
/* mkdir -p with mode; returns 0 or -1 (errno set). */
int mkdir_p(const char *path, mode_t mode);
/* fsync a directory by path. */
int fsync_dir(const char *path);

/* A random id of n hex characters (n < 64) written to out[n+1]. */
void random_hex(char *out, size_t n);

/* The length of the valid UTF-8 sequence (RFC 3629: shortest form, no
 * surrogates, at most U+10FFFF) at s, n bytes available, with its code
 * point in *cp; 0 when it is not one. */
size_t utf8_char(const unsigned char *s, size_t n, uint32_t *cp);

#endif

/*
 * selftest_store: where self-test reports live, and the reply we mail.
 *
 * A report is two files under DATA_DIR/selftest/: TOKEN.json (what
 * `postern selftest show --json` and the dashboard read) and TOKEN.txt (the
 * text for people). Each is written to a temporary name, fsync'd and
 * renamed, so a reader never sees half a report; a newer report for the
 * same token replaces the older. Beyond `keep` reports, the oldest go.
 *
 * Blocking (disk): worker threads and the CLI only.
 */
#ifndef POSTERN_SELFTEST_STORE_H
#define POSTERN_SELFTEST_STORE_H

#include <stddef.h>
#include <stdint.h>

#define SELFTEST_TOKEN_MIN 4
#define SELFTEST_TOKEN_MAX 64

/* Whether t (n bytes) is a token: 4 to 64 lower-case letters and digits. */
int selftest_token_valid(const char *t, size_t n);

/* Writes the report files; removes the oldest beyond keep. 0, or -1 with
 * errno set. */
int selftest_save(const char *data_dir, const char *token, const char *json, const char *text, unsigned keep);

/* The directory of the reports (newly allocated). */
char *selftest_dir(const char *data_dir);

/* The mail that carries a report back to its sender (RFC 3834: from the
 * null sender in the envelope, Auto-Submitted: auto-replied), header and
 * body, LF line endings; newly allocated. */
char *selftest_reply_message(const char *hostname, const char *domain, const char *to, const char *token,
			     double score, const char *text, int64_t now);

/* A new random token (10 characters) into out (at least 11 bytes). */
void selftest_new_token(char *out);

#endif

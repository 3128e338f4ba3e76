/*
 * unpack: the compressed containers reports arrive in, opened within fixed
 * bounds.
 *
 * DMARC aggregate reports (RFC 7489 section 7.2.1.1) come gzipped or zipped;
 * TLS reports (RFC 8460 section 5.3) gzipped or plain. unpack_any() looks at
 * the first bytes (gzip 1f 8b, zip "PK\3\4"), not at names or content types,
 * and returns the report bytes. Everything is bounded: the output by
 * max_out (a decompression bomb is cut off as soon as it passes the bound,
 * never inflated whole), a zip by UNPACK_ZIP_MAX_ENTRIES entries, of which
 * exactly one must be a report (.xml or .json, or the only entry). Nested
 * containers (a zip in a gzip) are refused. Pure: bytes in, bytes out.
 *
 * Libraries: zlib for gzip (inflate with automatic header detection), libzip
 * for zip (opened from memory; it checks each entry's CRC).
 */
#ifndef POSTERN_REPORT_UNPACK_H
#define POSTERN_REPORT_UNPACK_H

#include <stddef.h>

#define UNPACK_ZIP_MAX_ENTRIES 16

enum unpack_format { UNPACK_PLAIN, UNPACK_GZIP, UNPACK_ZIP };

/* What the first bytes say. */
enum unpack_format unpack_detect(const unsigned char *in, size_t len);
const char *unpack_format_name(enum unpack_format f);

/*
 * Unpacks in (len bytes) into a newly allocated, NUL-terminated buffer
 * (*out, *outlen bytes without the NUL; the caller frees). Plain input is
 * copied. Returns 0, or -1 with the reason in why: too large, truncated,
 * corrupt, too many entries, no report inside.
 */
int unpack_any(const unsigned char *in, size_t len, size_t max_out, char **out, size_t *outlen,
	       enum unpack_format *format, char *why, size_t whysize);

#endif

/*
 * mime: a bounded MIME walker (RFC 2045, 2046) that finds the report in a
 * report mail.
 *
 * DMARC aggregate reports (RFC 7489 section 7.2.1.1) and TLS reports
 * (RFC 8460 section 5.3) arrive as an attachment: application/gzip,
 * application/zip, text/xml, application/tlsrpt+gzip or
 * application/tlsrpt+json (and the usual variants: application/x-gzip,
 * application/x-zip-compressed, application/xml, application/json, or
 * application/octet-stream with a file name ending .xml, .gz, .zip or
 * .json). The walker descends multipart bodies and message/rfc822 parts,
 * depth first, and returns the first such part decoded from base64 or
 * quoted-printable.
 *
 * Pure: bytes in, bytes out. Bounded: at most MIME_MAX_DEPTH nested
 * multiparts, MIME_MAX_PARTS parts in all, MIME_MAX_HEADER bytes of header
 * per part, and max_out decoded bytes. CRLF and bare LF line ends both work
 * (a message read from a Maildir has LF).
 */
#ifndef POSTERN_REPORT_MIME_H
#define POSTERN_REPORT_MIME_H

#include <stddef.h>

#define MIME_MAX_DEPTH 8
#define MIME_MAX_PARTS 64
#define MIME_MAX_HEADER (64 * 1024)

struct mime_found {
	char *data; /* decoded, NUL-terminated; the caller frees */
	size_t len;
	char content_type[96]; /* lower-cased type/subtype */
	char filename[256];    /* from Content-Disposition or name=; may be empty */
};

/* Returns 1 and fills out when a report part is found, 0 when the message
 * has none (why says so), -1 when it breaks a bound or a part cannot be
 * decoded (why says which). */
int mime_find_report(const char *msg, size_t len, size_t max_out, struct mime_found *out, char *why,
		     size_t whysize);

#endif

/*
 * form: the two pieces of HTTP a browser sends us that evhttp leaves to us:
 * an HTML form body (application/x-www-form-urlencoded, as in the URL
 * standard: '&'-separated name=value pairs, '+' for space, %XX escapes) and
 * the Cookie header (RFC 6265 section 4.2: "name=value; name2=value2").
 *
 * Pure and bounded: the caller gives the output buffer; a value that does
 * not fit, or that decodes to a NUL byte, is treated as absent (-1). Names
 * match exactly (case matters, as in both standards). Fuzzed
 * (tests/fuzz/fuzz_form.c).
 */
#ifndef POSTERN_WEB_FORM_H
#define POSTERN_WEB_FORM_H

#include <stddef.h>

/* The first field called name in the form body (len bytes), decoded into
 * out (outsize bytes, NUL-terminated). Returns its length, or -1 when the
 * field is absent, does not fit or holds a NUL. */
long form_field(const char *body, size_t len, const char *name, char *out, size_t outsize);

/* The first cookie called name in a Cookie header value, copied (cookie
 * values are not decoded) into out. Returns its length or -1. */
long form_cookie(const char *header, const char *name, char *out, size_t outsize);

#endif

/*
 * authres: the Authentication-Results header field (RFC 8601).
 *
 * postern adds exactly one, under its authserv-id, carrying the spf, dkim,
 * dmarc and arc results. Before that, any Authentication-Results field in
 * the message that claims our authserv-id is removed (section 5), so that
 * no sender can forge our verdicts; fields of other authserv-ids are kept.
 * Pure functions: text in, text out.
 */
#ifndef POSTERN_AUTHRES_H
#define POSTERN_AUTHRES_H

#include <stddef.h>

/* The authserv-id an Authentication-Results field value claims (the first
 * token, lower-cased) into out; 0, or -1 if the value has none. */
int authres_serv_id(const char *value, size_t len, char *out, size_t outsize);

/*
 * Copies the header block hdr (hdr_len bytes, LF line endings, as the SMTP
 * layer stores it) without the Authentication-Results fields whose
 * authserv-id equals ours (case-insensitive). Returns a newly allocated
 * block and its length in *out_len; *removed counts the fields dropped.
 */
char *authres_strip(const char *hdr, size_t hdr_len, const char *authserv_id, size_t *out_len, int *removed);

/* A growing Authentication-Results value: "authserv-id; method=result
 * ptype.property=value ... ; ...". Add results in order, then take the
 * folded field with authres_field(). */
struct authres;
struct authres *authres_new(const char *authserv_id);
/* Starts a result: method ("spf"), result ("pass"), optional reason
 * (written as a comment), then properties with authres_prop(). */
void authres_add(struct authres *a, const char *method, const char *result, const char *reason);
void authres_prop(struct authres *a, const char *ptype_prop, const char *value);
/* No method ran: "authserv-id; none" (RFC 8601 section 2.2). */
void authres_none(struct authres *a);
/* "Authentication-Results: ...\n", folded to 78 columns. The caller frees. */
char *authres_field(const struct authres *a);
void authres_free(struct authres *a);

#endif

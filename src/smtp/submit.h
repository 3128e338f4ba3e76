/*
 * submit: what postern does to a message it sends out, apart from the
 * session that received it: the fields RFC 6409 section 8 lets a
 * submission server add (Date, Message-ID), the author check of the
 * sender policy, DKIM signing (RFC 6376, dual RSA and Ed25519, RFC 8463)
 * and ARC sealing (RFC 8617) of the bytes as they will leave.
 *
 * The message is always head (a header block in memory, LF line endings,
 * ending with its empty line when it has a body) followed by a body
 * described by a struct maildir_msg (the spilled file part, then memory).
 * Signing and sealing read the whole body: they run on worker threads
 * (submit_sign(), submit_seal() block on the disk and on RSA), never on the
 * event loop; the keys are read-only and shared.
 */
#ifndef POSTERN_SMTP_SUBMIT_H
#define POSTERN_SMTP_SUBMIT_H

#include <stddef.h>
#include <stdint.h>

#include "auth/arc.h"
#include "deliver/maildir.h"

struct keyring_domain;

/* The header fields to add to the header block head (head_len bytes) when
 * it lacks them: "Date: ..." and "Message-ID: <...@hostname>", each ending
 * in LF; "" when it has both. now is the Unix time. Newly allocated. */
char *submit_missing_fields(const char *head, size_t head_len, const char *hostname, int64_t now);

/* head with fields inserted at the end of its header block (before the
 * empty line that ends it, if any). Newly allocated; *outlen set. */
char *submit_insert_fields(const char *head, size_t head_len, const char *fields, size_t *outlen);

/* The addresses of the message's From fields ("local@domain", as
 * written), in *out (newly allocated, free with store_strv_free or each
 * and the array). Returns the count, 0 when there is no From, or -1 with
 * a reason in why when one does not parse. */
long submit_from_addresses(const char *head, size_t head_len, char ***out, char *why, size_t whysize);

/* DKIM-Signature fields (LF endings) for head + body with every key of kd,
 * newly allocated; NULL with a reason in err. */
char *submit_sign(const struct keyring_domain *kd, const char *head, size_t head_len, const struct maildir_msg *body,
		  int64_t now, char *err, size_t errsize);

/* The ARC set (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results;
 * LF endings) for head + body, sealed with key: cv is what our validation
 * of the incoming chain said; the AAR takes the results of head's
 * Authentication-Results field of authserv_id. "" when the chain already
 * failed (nothing to add), NULL with a reason in err. Newly allocated. */
char *submit_seal(const struct arc_sign_key *key, const char *authserv_id, enum arc_cv cv, const char *head,
		  size_t head_len, const struct maildir_msg *body, int64_t now, char *err, size_t errsize);

#endif

/*
 * tlspolicy: the pure parts of outbound TLS policies, MTA-STS (RFC 8461)
 * and DANE for SMTP (RFC 7672), and the result names of SMTP TLS
 * reporting (RFC 8460 section 4.3), for remote.c and the ledger.
 *
 * remote.c decides per MX host which policy applies: DANE when the MX
 * host's addresses and its _25._tcp TLSA records are DNSSEC-validated
 * (DANE takes precedence, RFC 8461 section 2), else the domain's MTA-STS
 * policy (enforce or testing), else none (opportunistic TLS). This file
 * holds what does not need the network: the TLSA rdata parser (fuzzed),
 * which TLSA records are usable for SMTP, and how an OpenSSL verification
 * error becomes an RFC 8460 result type.
 */
#ifndef POSTERN_DELIVER_TLSPOLICY_H
#define POSTERN_DELIVER_TLSPOLICY_H

#include <stddef.h>
#include <stdint.h>

#define TLSA_MAX_RECORDS 16 /* TLSA records per MX host we hand to OpenSSL */

enum tlsp_policy { TLSP_NONE, TLSP_STS_TESTING, TLSP_STS_ENFORCE, TLSP_DANE };
/* "none", "sts-testing", "sts-enforce", "dane": the ledger's tls_policy. */
const char *tlsp_policy_name(enum tlsp_policy p);

/* RFC 8460 section 4.3 result types; TLSP_OK is "no failure". */
enum tlsp_result {
	TLSP_OK,
	TLSP_STARTTLS_NOT_SUPPORTED,
	TLSP_CERT_HOST_MISMATCH,
	TLSP_CERT_EXPIRED,
	TLSP_CERT_NOT_TRUSTED,
	TLSP_VALIDATION_FAILURE,
	TLSP_TLSA_INVALID,
	TLSP_DNSSEC_INVALID,
	TLSP_STS_POLICY_FETCH_ERROR,
	TLSP_STS_POLICY_INVALID,
	TLSP_STS_WEBPKI_INVALID,
};
/* "starttls-not-supported", ...; NULL for TLSP_OK. */
const char *tlsp_result_name(enum tlsp_result r);

/* One TLSA record (RFC 6698 section 2.1). data points into the rdata it
 * was parsed from (borrowed). */
struct tlsa_rec {
	uint8_t usage, selector, mtype;
	const unsigned char *data;
	size_t len;
};

/* Parses TLSA rdata: usage, selector, matching type, then at least one
 * byte of association data. 0, or -1 with the reason. */
int tlsa_parse(const unsigned char *rdata, size_t len, struct tlsa_rec *out, char *why, size_t whysize);

/* RFC 7672 section 3.1: usable for SMTP are DANE-TA(2) and DANE-EE(3) with
 * a known selector (0 full certificate, 1 SubjectPublicKeyInfo) and
 * matching type (0 full, 1 SHA-256 of 32 bytes, 2 SHA-512 of 64 bytes).
 * PKIX-TA(0) and PKIX-EE(1) are not (section 3.1.3). */
int tlsa_usable(const struct tlsa_rec *r);

/* The RFC 8460 result for a finished handshake whose OpenSSL verification
 * result is verify_error (X509_V_OK is TLSP_OK); dane says TLSA records
 * were in force, so a mismatch is a DANE validation failure. */
enum tlsp_result tlsp_classify(long verify_error, int dane);

#endif

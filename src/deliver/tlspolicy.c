/*
 * tlspolicy: see tlspolicy.h. Pure: no I/O, no globals but constant tables.
 */
#include "deliver/tlspolicy.h"

#include <stdio.h>

#include <openssl/x509_vfy.h>

const char *tlsp_policy_name(enum tlsp_policy p)
{
	switch (p) {
	case TLSP_STS_TESTING:
		return "sts-testing";
	case TLSP_STS_ENFORCE:
		return "sts-enforce";
	case TLSP_DANE:
		return "dane";
	default:
		return "none";
	}
}

const char *tlsp_result_name(enum tlsp_result r)
{
	static const char *const names[] = {
		[TLSP_OK] = NULL,
		[TLSP_STARTTLS_NOT_SUPPORTED] = "starttls-not-supported",
		[TLSP_CERT_HOST_MISMATCH] = "certificate-host-mismatch",
		[TLSP_CERT_EXPIRED] = "certificate-expired",
		[TLSP_CERT_NOT_TRUSTED] = "certificate-not-trusted",
		[TLSP_VALIDATION_FAILURE] = "validation-failure",
		[TLSP_TLSA_INVALID] = "tlsa-invalid",
		[TLSP_DNSSEC_INVALID] = "dnssec-invalid",
		[TLSP_STS_POLICY_FETCH_ERROR] = "sts-policy-fetch-error",
		[TLSP_STS_POLICY_INVALID] = "sts-policy-invalid",
		[TLSP_STS_WEBPKI_INVALID] = "sts-webpki-invalid",
	};
	if ((unsigned)r >= sizeof names / sizeof names[0])
		return "validation-failure";
	return names[r];
}

int tlsa_parse(const unsigned char *rdata, size_t len, struct tlsa_rec *out, char *why, size_t whysize)
{
	if (len < 4) {
		snprintf(why, whysize, "TLSA record of %zu bytes: usage, selector, matching type and data need at least 4",
			 len);
		return -1;
	}
	out->usage = rdata[0];
	out->selector = rdata[1];
	out->mtype = rdata[2];
	out->data = rdata + 3;
	out->len = len - 3;
	return 0;
}

int tlsa_usable(const struct tlsa_rec *r)
{
	if (r->usage != 2 && r->usage != 3)
		return 0;
	if (r->selector > 1)
		return 0;
	switch (r->mtype) {
	case 0:
		return r->len > 0;
	case 1:
		return r->len == 32;
	case 2:
		return r->len == 64;
	default:
		return 0;
	}
}

enum tlsp_result tlsp_classify(long e, int dane)
{
	switch (e) {
	case X509_V_OK:
		return TLSP_OK;
	case X509_V_ERR_HOSTNAME_MISMATCH:
		return TLSP_CERT_HOST_MISMATCH;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return TLSP_CERT_EXPIRED;
	case X509_V_ERR_DANE_NO_MATCH:
		return TLSP_VALIDATION_FAILURE;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
	case X509_V_ERR_INVALID_CA:
		return dane ? TLSP_VALIDATION_FAILURE : TLSP_CERT_NOT_TRUSTED;
	default:
		return TLSP_VALIDATION_FAILURE;
	}
}

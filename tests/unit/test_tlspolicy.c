/*
 * Unit tests for src/deliver/tlspolicy.c: TLSA rdata (RFC 6698 section
 * 2.1, the RFC 7671/7672 usable subset), the RFC 8460 result names, the
 * OpenSSL verification errors they come from; and the MTA-STS policy cache
 * in the store.
 */
#include <string.h>

#include <openssl/x509_vfy.h>

#include "deliver/tlspolicy.h"
#include "store/store.h"
#include "testlib.h"
#include "unit.h"

static int parse_usable(const unsigned char *d, size_t n)
{
	struct tlsa_rec r;
	char why[128];
	if (tlsa_parse(d, n, &r, why, sizeof why) < 0)
		return -1;
	return tlsa_usable(&r);
}

TEST(tlsa_parse_and_usable)
{
	unsigned char d[3 + 64];
	struct tlsa_rec r;
	char why[128];

	memset(d, 0xab, sizeof d);
	d[0] = 3, d[1] = 1, d[2] = 1; /* DANE-EE SPKI SHA-256: the common SMTP record */
	CHECK_INT(tlsa_parse(d, 3 + 32, &r, why, sizeof why), 0);
	CHECK_INT(r.usage, 3);
	CHECK_INT(r.selector, 1);
	CHECK_INT(r.mtype, 1);
	CHECK(r.data == d + 3 && r.len == 32);
	CHECK_INT(tlsa_usable(&r), 1);
	CHECK_INT(parse_usable(d, 3 + 31), 0); /* SHA-256 of the wrong length */
	d[2] = 2;
	CHECK_INT(parse_usable(d, 3 + 64), 1); /* SHA-512 */
	CHECK_INT(parse_usable(d, 3 + 32), 0);
	d[2] = 0;
	CHECK_INT(parse_usable(d, 3 + 10), 1); /* full SPKI */
	d[0] = 2, d[1] = 0, d[2] = 1;
	CHECK_INT(parse_usable(d, 3 + 32), 1); /* DANE-TA certificate digest */
	d[0] = 0;
	CHECK_INT(parse_usable(d, 3 + 32), 0); /* PKIX-TA: unusable for SMTP (RFC 7672 3.1.3) */
	d[0] = 1;
	CHECK_INT(parse_usable(d, 3 + 32), 0); /* PKIX-EE */
	d[0] = 4;
	CHECK_INT(parse_usable(d, 3 + 32), 0); /* unknown usage */
	d[0] = 3, d[1] = 2;
	CHECK_INT(parse_usable(d, 3 + 32), 0); /* unknown selector */
	d[1] = 1, d[2] = 3;
	CHECK_INT(parse_usable(d, 3 + 32), 0); /* unknown matching type */
	CHECK_INT(tlsa_parse(d, 3, &r, why, sizeof why), -1); /* no data */
	CHECK(strstr(why, "at least 4") != NULL);
	CHECK_INT(tlsa_parse(d, 0, &r, why, sizeof why), -1);
}

TEST(tlsp_names_and_classify)
{
	CHECK_STR(tlsp_policy_name(TLSP_NONE), "none");
	CHECK_STR(tlsp_policy_name(TLSP_STS_TESTING), "sts-testing");
	CHECK_STR(tlsp_policy_name(TLSP_STS_ENFORCE), "sts-enforce");
	CHECK_STR(tlsp_policy_name(TLSP_DANE), "dane");
	CHECK(tlsp_result_name(TLSP_OK) == NULL);
	CHECK_STR(tlsp_result_name(TLSP_STARTTLS_NOT_SUPPORTED), "starttls-not-supported");
	CHECK_STR(tlsp_result_name(TLSP_STS_WEBPKI_INVALID), "sts-webpki-invalid");
	CHECK_STR(tlsp_result_name(TLSP_DNSSEC_INVALID), "dnssec-invalid");
	CHECK_INT(tlsp_classify(X509_V_OK, 0), TLSP_OK);
	CHECK_INT(tlsp_classify(X509_V_ERR_HOSTNAME_MISMATCH, 0), TLSP_CERT_HOST_MISMATCH);
	CHECK_INT(tlsp_classify(X509_V_ERR_CERT_HAS_EXPIRED, 0), TLSP_CERT_EXPIRED);
	CHECK_INT(tlsp_classify(X509_V_ERR_CERT_NOT_YET_VALID, 0), TLSP_CERT_EXPIRED);
	CHECK_INT(tlsp_classify(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, 0), TLSP_CERT_NOT_TRUSTED);
	CHECK_INT(tlsp_classify(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 0), TLSP_CERT_NOT_TRUSTED);
	CHECK_INT(tlsp_classify(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 1), TLSP_VALIDATION_FAILURE);
	CHECK_INT(tlsp_classify(X509_V_ERR_DANE_NO_MATCH, 1), TLSP_VALIDATION_FAILURE);
	CHECK_INT(tlsp_classify(X509_V_ERR_CERT_SIGNATURE_FAILURE, 0), TLSP_VALIDATION_FAILURE);
}

TEST(store_mtasts_cache)
{
	char dir[64], err[256] = "";
	struct store *st;
	struct store_mtasts m, got;

	testlib_mkdtemp(dir, "mtasts");
	st = store_open(dir, err, sizeof err);
	CHECK(st != NULL);
	if (!st)
		return;
	CHECK_INT(store_mtasts_get(st, "example.org", &got), STORE_NOTFOUND);
	m = (struct store_mtasts){ .domain = "example.org", .id = "abc1", .policy = "version: STSv1\r\n",
				   .fetched = 1000, .expires = 2000 };
	CHECK_INT(store_mtasts_put(st, &m), STORE_OK);
	CHECK_INT(store_mtasts_get(st, "example.org", &got), STORE_OK);
	CHECK_STR(got.id, "abc1");
	CHECK_STR(got.policy, "version: STSv1\r\n");
	CHECK_INT(got.fetched, 1000);
	CHECK_INT(got.expires, 2000);
	store_mtasts_clear(&got);
	m.id = "abc2"; /* a new id replaces the row */
	m.expires = 3000;
	CHECK_INT(store_mtasts_put(st, &m), STORE_OK);
	CHECK_INT(store_mtasts_get(st, "example.org", &got), STORE_OK);
	CHECK_STR(got.id, "abc2");
	CHECK_INT(got.expires, 3000);
	store_mtasts_clear(&got);
	store_mtasts_clear(NULL);
	CHECK_INT(store_mtasts_get(st, "Bad Domain", &got), STORE_INVALID);
	m.domain = "";
	CHECK_INT(store_mtasts_put(st, &m), STORE_INVALID);
	store_close(st);
	testlib_rmtree(dir);
}

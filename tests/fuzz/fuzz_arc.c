/*
 * Fuzz target: ARC (src/auth/arc.c): instance tags, the chain's structure
 * and the validator over hostile header blocks, and sealing. The first byte
 * picks the mode:
 *
 *   0  the rest as the value of an AAR, an AMS and an AS: an instance is
 *      0 or 1..50, and an AAR's starts the value (after CFWS) with "i".
 *   1  the rest as a message: arc_chain_collect() gives complete sets
 *      1..n (n <= 50) of fields of the right kind and instance when it
 *      succeeds; the validator, its keys answered with RFC 8463's Ed25519
 *      key or DNS failures, always decides, never "pass" (the input cannot
 *      hold a valid signature), says "none" only without ARC fields, and
 *      asks only for valid key names.
 *   2  the rest as a message, sealed with a fixed Ed25519 key (cv=none
 *      without ARC fields, else fail): a message without ARC fields that
 *      could be sealed must then validate ("pass", one set, our sealer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth/arc.h"
#include "lib/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_instances(const char *s, size_t n)
{
	for (int k = ARC_AAR; k <= ARC_AS; k++) {
		const char *why = NULL;
		unsigned inst = arc_field_instance((enum arc_kind)k, s, n, &why);
		if (inst > ARC_MAX_INSTANCES || (!inst && !why))
			abort();
		if (inst && k == ARC_AAR && !memchr(s, 'i', n))
			abort();
	}
}

static void answer(struct arc_verifier *v, const char *record, int fail_odd)
{
	struct dns_rr rr = { 0 };
	struct dns_answer a = { 0 };
	rr.type = DNS_T_TXT;
	rr.data = (unsigned char *)record;
	rr.len = strlen(record);
	a.rrs = &rr;
	a.nrrs = 1;
	for (size_t k = 0; k < arc_verifier_key_count(v); k++) {
		const char *name = arc_verifier_key_name(v, k);
		if (!name || !dkim_valid_name(name, strlen(name)))
			abort();
		arc_verifier_key_answer(v, k, fail_odd && (k & 1) ? DNS_TIMEOUT : DNS_ANSWER, &a);
	}
}

static void check_chain(const char *s, size_t n)
{
	static const char key[] = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
	struct msg_headers h;
	struct arc_chain c;
	struct arc_verifier *v;
	const struct arc_result *r;
	const char *why;
	int rc;

	msg_headers_parse(&h, s, n);
	rc = arc_chain_collect(&h, &c, &why);
	if (c.n > ARC_MAX_INSTANCES)
		abort();
	if (rc == 0) {
		for (unsigned i = 1; i <= c.n; i++) {
			long f[3] = { c.aar[i], c.ams[i], c.as[i] };
			for (int k = 0; k < 3; k++) {
				const char *val, *w;
				size_t vlen;
				if (f[k] < 0 || (size_t)f[k] >= h.nfields || arc_field_kind(&h, (size_t)f[k]) != k)
					abort();
				val = msg_field_value(&h, (size_t)f[k], &vlen);
				if (arc_field_instance((enum arc_kind)k, val, vlen, &w) != i)
					abort();
			}
		}
	}

	v = arc_verifier_new(1700000000);
	arc_verifier_feed(v, s, n / 2);
	if (arc_verifier_headers_done(v))
		answer(v, key, n & 1);
	arc_verifier_feed(v, s + n / 2, n - n / 2);
	arc_verifier_end(v);
	answer(v, key, n & 1);
	r = arc_verifier_result(v);
	if (!arc_verifier_done(v) || !r || !r->reason || r->cv == ARC_CV_PASS || r->nsets > ARC_MAX_INSTANCES)
		abort();
	if ((r->cv == ARC_CV_NONE) != (c.nfields == 0 && h.status != MSG_TOO_BIG && h.status != MSG_TOO_MANY))
		abort();
	for (size_t i = 0; i < r->nsets; i++)
		if (r->sets[i].instance != i + 1 || !r->sets[i].seal_domain || !r->sets[i].aar)
			abort();
	arc_verifier_free(v);
	msg_headers_clear(&h);
}

static struct arc_sign_key *fuzz_key(char **record)
{
	static struct arc_sign_key *k;
	static char *rec;
	if (!k) {
		static const unsigned char seed[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
		char err[256];
		EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
		k = arc_sign_key_new("fuzz.example", "arc", pk, err, sizeof err);
		if (!k)
			abort();
		rec = dkim_sign_key_record(arc_sign_key_dkim(k));
	}
	*record = rec;
	return k;
}

static void check_seal(const char *s, size_t n)
{
	char *record, err[256], *fields;
	struct arc_sign_key *key = fuzz_key(&record);
	struct arc_sealer *sealer = arc_sealer_new(key, "mx.fuzz.example", 1700000000);
	struct msg_headers h;
	struct arc_chain c;
	const char *why;
	const char *nl = memchr(s, '\n', n);
	int crlf = nl && nl > s && nl[-1] == '\r';

	msg_headers_parse(&h, s, n);
	arc_chain_collect(&h, &c, &why);
	arc_sealer_feed(sealer, s, n);
	fields = arc_sealer_end(sealer, c.nfields ? ARC_CV_FAIL : ARC_CV_NONE, (n & 1) ? NULL : "spf=pass", crlf, err,
			       sizeof err);
	if (fields && *fields && c.nfields == 0) {
		size_t flen = strlen(fields);
		char *all = xmalloc(flen + n + 1);
		struct arc_verifier *v = arc_verifier_new(1700000000);
		const struct arc_result *r;
		memcpy(all, fields, flen);
		memcpy(all + flen, s, n);
		arc_verifier_feed(v, all, flen + n);
		arc_verifier_end(v);
		answer(v, record, 0);
		r = arc_verifier_result(v);
		if (!r || r->cv != ARC_CV_PASS || r->instances != 1 || r->nsets != 1 ||
		    strcmp(r->sets[0].seal_domain, "fuzz.example"))
			abort();
		arc_verifier_free(v);
		free(all);
	}
	if (fields && !*fields && c.nfields == 0)
		abort(); /* "nothing to add" only for a chain that ended */
	free(fields);
	arc_sealer_free(sealer);
	msg_headers_clear(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 16384)
		return 0;
	switch (data[0] % 3) {
	case 0:
		check_instances((const char *)data + 1, size - 1);
		break;
	case 1:
		check_chain((const char *)data + 1, size - 1);
		break;
	default:
		check_seal((const char *)data + 1, size - 1);
		break;
	}
	return 0;
}

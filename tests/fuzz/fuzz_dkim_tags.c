/*
 * Fuzz target: the DKIM tag-list parser, key records and signature fields
 * (src/auth/dkim.c). The first byte picks the mode:
 *
 *   0  tag-list: a parse that succeeds yields valid names, no duplicates,
 *      values without ';', control bytes or edge white space; written back
 *      as "name=value;" it parses to the same tags.
 *   1  key record: a parsed key that is not revoked has an EVP key and bits.
 *   2  the input as a DKIM-Signature field of a small message, verified
 *      with RFC 8463's key: it must never pass (the input cannot hold a
 *      valid signature), every outcome is set, every key name is a valid
 *      DNS name.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dkim.h"
#include "lib/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void check_tags(const char *s, size_t n)
{
	struct dkim_tags t, u;
	const char *why;
	struct msg_buf b = { 0 };
	if (dkim_tags_parse(s, n, &t, &why) < 0)
		return;
	if (t.n > DKIM_MAX_TAGS)
		abort();
	for (size_t i = 0; i < t.n; i++) {
		const struct dkim_tag *g = &t.tag[i];
		if (!g->name_len || !((g->name[0] | 0x20) >= 'a' && (g->name[0] | 0x20) <= 'z'))
			abort();
		for (size_t k = 0; k < g->value_len; k++)
			if (g->value[k] == ';' || ((unsigned char)g->value[k] < 0x20 && !fws(g->value[k])))
				abort();
		if (g->value_len && (fws(g->value[0]) || fws(g->value[g->value_len - 1])))
			abort();
		for (size_t k = 0; k < i; k++)
			if (t.tag[k].name_len == g->name_len && !memcmp(t.tag[k].name, g->name, g->name_len))
				abort();
		msg_buf_append(&b, g->name, g->name_len);
		msg_buf_append(&b, "=", 1);
		msg_buf_append(&b, g->value, g->value_len);
		msg_buf_append(&b, ";", 1);
	}
	if (dkim_tags_parse(b.data ? b.data : "", b.len, &u, &why) < 0 || u.n != t.n)
		abort();
	for (size_t i = 0; i < t.n; i++)
		if (u.tag[i].name_len != t.tag[i].name_len || memcmp(u.tag[i].name, t.tag[i].name, t.tag[i].name_len) ||
		    u.tag[i].value_len != t.tag[i].value_len ||
		    memcmp(u.tag[i].value, t.tag[i].value, t.tag[i].value_len))
			abort();
	msg_buf_clear(&b);
}

static void check_key(const char *s, size_t n)
{
	struct dkim_key k;
	const char *why;
	if (dkim_key_parse(s, n, &k, &why) < 0)
		return;
	if (!k.revoked && (!k.pkey || !k.bits))
		abort();
	dkim_key_clear(&k);
}

static void check_signature(const char *s, size_t n)
{
	static const char key[] = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
	struct dkim_verifier *v = dkim_verifier_new(0, 1700000000);
	struct dns_rr rr = { 0 };
	struct dns_answer a = { 0 };
	rr.type = DNS_T_TXT;
	rr.data = (unsigned char *)key;
	rr.len = sizeof key - 1;
	a.rrs = &rr;
	a.nrrs = 1;
	dkim_verifier_feed(v, "DKIM-Signature:", 15);
	dkim_verifier_feed(v, s, n);
	dkim_verifier_feed(v, "\nFrom: a@example.org\n\nbody\n", 27);
	for (size_t i = 0; i < dkim_verifier_count(v); i++) {
		const char *name = dkim_verifier_key_name(v, i);
		if (!name)
			continue;
		if (!dkim_valid_name(name, strlen(name)))
			abort();
		dkim_verifier_key_answer(v, i, (i & 1) ? DNS_TIMEOUT : DNS_ANSWER, &a);
	}
	dkim_verifier_end(v);
	if (!dkim_verifier_done(v))
		abort();
	for (size_t i = 0; i < dkim_verifier_count(v); i++) {
		const struct dkim_outcome *o = dkim_verifier_outcome(v, i);
		if (!o || o->result == DKIM_PASS || o->result == DKIM_NONE || !o->reason || !o->domain ||
		    strlen(o->header_b) > 8)
			abort();
	}
	dkim_verifier_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 8192)
		return 0;
	switch (data[0] % 3) {
	case 0:
		check_tags((const char *)data + 1, size - 1);
		break;
	case 1:
		check_key((const char *)data + 1, size - 1);
		break;
	default:
		check_signature((const char *)data + 1, size - 1);
		break;
	}
	return 0;
}

/*
 * Fuzz target: the DMARC record parser, the From header parser with domain
 * normalization, and the whole evaluation over a DNS table made from the
 * input (src/auth/dmarc.c). The first byte picks the mode. Invariants
 * checked (abort() when broken):
 *
 *  - record: a parse that succeeds has pct <= 100, adkim/aspf r or s,
 *    policies in range, at most DMARC_MAX_URIS URIs each with a scheme,
 *    and fo= made of 0, 1, d, s and ':'; parsing twice gives the same.
 *  - From: the count returned equals the domains added; each domain is
 *    non-empty and, unless a domain literal, free of white space and
 *    specials; a normalized domain is made of
 *    lower-case letters, digits, '-', '_' and '.', at most 246 bytes.
 *  - evaluation: it ends within a few rounds, never asks more than
 *    DMARC_MAX_LOOKUPS questions, and a reject or quarantine disposition
 *    only follows a fail (or an unusable From).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_record(const char *text, size_t len)
{
	struct dmarc_record r, again;
	char why[256];
	enum dmarc_parse rc = dmarc_record_parse(text, len, &r, why, sizeof why);
	if (dmarc_record_parse(text, len, &again, why, sizeof why) != rc)
		abort();
	dmarc_record_clear(&again);
	if (rc != DMARC_PARSE_OK)
		return;
	if (r.pct > 100 || (r.adkim != 'r' && r.adkim != 's') || (r.aspf != 'r' && r.aspf != 's'))
		abort();
	if (r.p > DMARC_POLICY_REJECT || r.sp > DMARC_POLICY_REJECT || r.np > DMARC_POLICY_REJECT)
		abort();
	if (r.nrua > DMARC_MAX_URIS || r.nruf > DMARC_MAX_URIS || !r.rf)
		abort();
	for (size_t i = 0; i < r.nrua; i++)
		if (!strchr(r.rua[i].uri, ':'))
			abort();
	for (size_t i = 0; i < r.nruf; i++)
		if (!strchr(r.ruf[i].uri, ':'))
			abort();
	if (!r.fo[0] || strspn(r.fo, "01ds:") != strlen(r.fo))
		abort();
	dmarc_record_clear(&r);
}

static void check_from(const char *value)
{
	char **d = NULL, why[256], out[300];
	size_t nd = 0;
	int rc = dmarc_from_parse(value, &d, &nd, why, sizeof why);
	if (rc >= 0 && (size_t)rc != nd)
		abort();
	for (size_t i = 0; i < nd; i++) {
		if (rc >= 0 && (!d[i][0] || (d[i][0] != '[' && strpbrk(d[i], " \t\r\n()<>,;:@\\\""))))
			abort();
		if (dmarc_domain_normalize(d[i], out, sizeof out, why, sizeof why) == 0) {
			if (strlen(out) > 246 || strspn(out, "abcdefghijklmnopqrstuvwxyz0123456789-_.") != strlen(out))
				abort();
			dmarc_org_domain(out, why, sizeof why);
			if (strlen(why) > strlen(out))
				abort();
		}
		free(d[i]);
	}
	free(d);
}

/* Input: "FROM\nRECORD\nBITS": every _dmarc TXT query gets RECORD; the
 * BITS bytes pick each answer's status in turn. */
static void check_eval(const char *text)
{
	const char *nl1 = strchr(text, '\n'), *nl2;
	char from[2048], rec[2048];
	const char *froms[1] = { from };
	const char *bits;
	size_t nbits, k = 0;
	struct dmarc_dkim dkim[2] = { { "example.com", 1, 0 }, { "other.example", 0, 1 } };
	struct dmarc_eval *e;
	int done = 0;

	if (!nl1 || (size_t)(nl1 - text) >= sizeof from)
		return;
	nl2 = strchr(nl1 + 1, '\n');
	if (!nl2 || (size_t)(nl2 - nl1 - 1) >= sizeof rec)
		return;
	memcpy(from, text, (size_t)(nl1 - text));
	from[nl1 - text] = '\0';
	memcpy(rec, nl1 + 1, (size_t)(nl2 - nl1 - 1));
	rec[nl2 - nl1 - 1] = '\0';
	bits = nl2 + 1;
	nbits = strlen(bits);
	e = dmarc_eval_new(froms, 1, "mail.example.com", SPF_PASS, dkim, (size_t)(bits[0] & 1) + 1);
	e->sample = nbits ? (unsigned char)bits[0] % 100 : 0;
	for (int round = 0; round < 8 && !done; round++) {
		if (dmarc_run(e) == DMARC_RUN_DONE) {
			done = 1;
			break;
		}
		if (e->nlookups > DMARC_MAX_LOOKUPS)
			abort();
		for (size_t i = 0; i < e->nlookups; i++) {
			struct dmarc_lookup *l = e->lookups[i];
			struct dns_rr rr;
			struct dns_answer a = { 0 };
			unsigned b = nbits ? (unsigned char)bits[k++ % nbits] : 0;
			enum dns_status st = (enum dns_status)(b % 5);
			if (l->answered)
				continue;
			memset(&rr, 0, sizeof rr);
			rr.type = l->type;
			if (l->type == DNS_T_TXT) {
				rr.data = (unsigned char *)rec;
				rr.len = strlen(rec);
			} else if (l->type == DNS_T_MX) {
				rr.name = (char *)"mx.example.com";
			}
			a.rrs = &rr;
			a.nrrs = 1;
			dmarc_answer(e, i, st, &a);
		}
	}
	if (!done)
		abort(); /* at most 3 rounds are ever needed */
	if (e->disposition != DMARC_POLICY_NONE && e->result != DMARC_FAIL && !e->from_problem)
		abort();
	if (!e->reason)
		abort();
	dmarc_eval_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[4200];

	if (size < 1 || size > 4096)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0:
		/* The record may hold NUL bytes: pass the length. */
		check_record((const char *)data + 1, size - 1);
		break;
	case 1:
		check_from(text);
		break;
	default:
		check_eval(text);
		break;
	}
	return 0;
}

/*
 * dmarc_xml: see dmarc_xml.h. One pass of expat's callbacks fills the
 * report: the path of the current element below <feedback> (namespace
 * stripped, e.g. "record/row/source_ip") picks the field its text goes to,
 * through the table fields[]. Every string is copied once into the
 * report's own list, so the store struct can borrow them. A problem stops
 * the parser at once (XML_StopParser) with our reason kept in the state.
 */
#include "report/dmarc_xml.h"

#include <arpa/inet.h>
/* Debian builds libexpat with DTD support (expat_config.h says XML_DTD);
 * the declarations of its amplification limits depend on it. */
#ifndef XML_DTD
#define XML_DTD 1
#endif
#include <expat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

#define NS_SEP '|'
#define NS_DMARC2 "urn:ietf:params:xml:ns:dmarc-2.0"
#define AUTH_TEXT_MAX (DMARC_XML_MAX_AUTH * (3 * DMARC_XML_MAX_FIELD + 32))

enum field {
	F_NONE, F_VERSION, F_ORG, F_EMAIL, F_EXTRA, F_REPORT_ID, F_BEGIN, F_END,
	F_DOMAIN, F_ADKIM, F_ASPF, F_P, F_SP, F_NP, F_PCT, F_FO, F_TESTING,
	F_SOURCE_IP, F_COUNT, F_DISPOSITION, F_PE_DKIM, F_PE_SPF, F_REASON_TYPE, F_REASON_COMMENT,
	F_ENV_TO, F_ENV_FROM, F_HEADER_FROM,
	F_AUTH_DOMAIN, F_AUTH_SELECTOR, F_AUTH_SCOPE, F_AUTH_RESULT,
};

static const struct {
	const char *path;
	enum field f;
} fields[] = {
	{ "version", F_VERSION },
	{ "report_metadata/org_name", F_ORG },
	{ "report_metadata/email", F_EMAIL },
	{ "report_metadata/extra_contact_info", F_EXTRA },
	{ "report_metadata/report_id", F_REPORT_ID },
	{ "report_metadata/date_range/begin", F_BEGIN },
	{ "report_metadata/date_range/end", F_END },
	{ "policy_published/domain", F_DOMAIN },
	{ "policy_published/adkim", F_ADKIM },
	{ "policy_published/aspf", F_ASPF },
	{ "policy_published/p", F_P },
	{ "policy_published/sp", F_SP },
	{ "policy_published/np", F_NP },
	{ "policy_published/pct", F_PCT },
	{ "policy_published/fo", F_FO },
	{ "policy_published/testing", F_TESTING },
	{ "record/row/source_ip", F_SOURCE_IP },
	{ "record/row/count", F_COUNT },
	{ "record/row/policy_evaluated/disposition", F_DISPOSITION },
	{ "record/row/policy_evaluated/dkim", F_PE_DKIM },
	{ "record/row/policy_evaluated/spf", F_PE_SPF },
	{ "record/row/policy_evaluated/reason/type", F_REASON_TYPE },
	{ "record/row/policy_evaluated/reason/comment", F_REASON_COMMENT },
	{ "record/identifiers/envelope_to", F_ENV_TO },
	{ "record/identifiers/envelope_from", F_ENV_FROM },
	{ "record/identifiers/header_from", F_HEADER_FROM },
	{ "record/identities/envelope_to", F_ENV_TO },
	{ "record/identities/envelope_from", F_ENV_FROM },
	{ "record/identities/header_from", F_HEADER_FROM },
	{ "record/auth_results/dkim/domain", F_AUTH_DOMAIN },
	{ "record/auth_results/dkim/selector", F_AUTH_SELECTOR },
	{ "record/auth_results/dkim/result", F_AUTH_RESULT },
	{ "record/auth_results/spf/domain", F_AUTH_DOMAIN },
	{ "record/auth_results/spf/scope", F_AUTH_SCOPE },
	{ "record/auth_results/spf/result", F_AUTH_RESULT },
};

struct auth_item {
	int spf; /* else dkim */
	char domain[DMARC_XML_MAX_FIELD + 1], selector[DMARC_XML_MAX_FIELD + 1], scope[64], result[64];
};

struct xstate {
	XML_Parser p;
	struct dmarc_report *rep;
	size_t max_records;
	int failed;
	char why[300];

	int depth; /* 0 outside the root, 1 inside <feedback> */
	char path[DMARC_XML_MAX_DEPTH * 64 + 1];
	size_t plen[DMARC_XML_MAX_DEPTH + 2];
	char text[DMARC_XML_MAX_FIELD + 1];
	size_t tlen;
	int toverflow;
	int seen_root;

	/* report fields in progress */
	char *version, *begin, *end;
	char *adkim, *aspf, *pol_p, *pol_sp, *pol_np, *pct, *fo, *testing;
	int is_dmarc2;

	/* the record in progress */
	int in_record;
	char *count;
	struct auth_item auth[DMARC_XML_MAX_AUTH];
	size_t nauth;
	struct auth_item cur;
	char reason_type[DMARC_XML_MAX_FIELD + 1], reason_comment[DMARC_XML_MAX_FIELD + 1];
	char reasons[2048];
};

static void fail(struct xstate *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct xstate *x, const char *fmt, ...)
{
	va_list ap;
	if (x->failed)
		return;
	x->failed = 1;
	va_start(ap, fmt);
	vsnprintf(x->why, sizeof x->why, fmt, ap);
	va_end(ap);
	XML_StopParser(x->p, XML_FALSE);
}

/* Keeps a copy of s (n bytes) in the report; returns it. */
static char *keep(struct dmarc_report *rep, const char *s, size_t n)
{
	if (rep->nstrings == rep->capstrings) {
		rep->capstrings = rep->capstrings ? rep->capstrings * 2 : 64;
		rep->strings = xrealloc(rep->strings, rep->capstrings * sizeof *rep->strings);
	}
	return rep->strings[rep->nstrings++] = xstrndup(s, n);
}

/* The trimmed text of the element that just ended; NULL when empty. */
static char *text_value(struct xstate *x)
{
	size_t a = 0, b = x->tlen;
	while (a < b && strchr(" \t\r\n", x->text[a]))
		a++;
	while (b > a && strchr(" \t\r\n", x->text[b - 1]))
		b--;
	return b > a ? keep(x->rep, x->text + a, b - a) : NULL;
}

static const char *local_name(const XML_Char *name)
{
	const char *sep = strrchr(name, NS_SEP);
	return sep ? sep + 1 : name;
}

static struct store_dmarc_record *cur_record(struct xstate *x)
{
	return &x->rep->records[x->rep->r.nrecords - 1];
}

static void start_record(struct xstate *x)
{
	struct dmarc_report *rep = x->rep;
	if (rep->r.nrecords >= x->max_records) {
		fail(x, "more than %zu records ([reports] max_records); refused", x->max_records);
		return;
	}
	if (rep->r.nrecords == rep->cap) {
		rep->cap = rep->cap ? rep->cap * 2 : 16;
		rep->records = xrealloc(rep->records, rep->cap * sizeof *rep->records);
	}
	memset(&rep->records[rep->r.nrecords], 0, sizeof *rep->records);
	rep->r.nrecords++;
	x->in_record = 1;
	x->count = NULL;
	x->nauth = 0;
	x->reasons[0] = '\0';
}

/* Relaxed alignment, approximated: equal, or one a subdomain of the other. */
static int aligned(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (!strcasecmp(a, b))
		return 1;
	if (la > lb)
		return a[la - lb - 1] == '.' && !strcasecmp(a + la - lb, b);
	if (lb > la)
		return b[lb - la - 1] == '.' && !strcasecmp(b + lb - la, a);
	return 0;
}

static void end_record(struct xstate *x)
{
	struct store_dmarc_record *r = cur_record(x);
	size_t n = x->rep->r.nrecords;
	unsigned char buf[16];
	char *end = NULL, auth[AUTH_TEXT_MAX];
	size_t alen = 0;
	unsigned long long c;

	x->in_record = 0;
	if (!r->source_ip) {
		fail(x, "record %zu has no source_ip", n);
		return;
	}
	if (inet_pton(AF_INET, r->source_ip, buf) != 1 && inet_pton(AF_INET6, r->source_ip, buf) != 1) {
		fail(x, "record %zu: source_ip '%.64s' is not an IP address", n, r->source_ip);
		return;
	}
	if (!x->count) {
		fail(x, "record %zu has no count", n);
		return;
	}
	c = strtoull(x->count, &end, 10);
	if (x->count[0] < '0' || x->count[0] > '9' || *end || c > 1000000000000ull) {
		fail(x, "record %zu: count '%.32s' is not a number of messages", n, x->count);
		return;
	}
	r->count = (int64_t)c;
	auth[0] = '\0';
	for (size_t i = 0; i < x->nauth; i++) {
		const struct auth_item *a = &x->auth[i];
		int w = snprintf(auth + alen, sizeof auth - alen, "%s%s=%s d=%s", alen ? "; " : "", a->spf ? "spf" : "dkim",
				 a->result[0] ? a->result : "none", a->domain[0] ? a->domain : "-");
		if (w > 0 && (size_t)w < sizeof auth - alen)
			alen += (size_t)w;
		if (a->spf && a->scope[0])
			w = snprintf(auth + alen, sizeof auth - alen, " scope=%s", a->scope);
		else if (!a->spf && a->selector[0])
			w = snprintf(auth + alen, sizeof auth - alen, " s=%s", a->selector);
		else
			w = 0;
		if (w > 0 && (size_t)w < sizeof auth - alen)
			alen += (size_t)w;
	}
	if (alen)
		r->auth_results = keep(x->rep, auth, alen);
	if (x->reasons[0])
		r->reason = keep(x->rep, x->reasons, strlen(x->reasons));
	/* Old reports leave policy_evaluated dkim/spf out: derive them. */
	for (int spf = 0; spf <= 1; spf++) {
		const char **slot = spf ? &r->spf : &r->dkim;
		int pass = 0;
		if (*slot)
			continue;
		for (size_t i = 0; i < x->nauth && r->header_from; i++)
			if (x->auth[i].spf == spf && !strcasecmp(x->auth[i].result, "pass") &&
			    aligned(x->auth[i].domain, r->header_from))
				pass = 1;
		*slot = pass ? "pass" : "fail";
	}
}

static void lower(char *s)
{
	if (s)
		str_lower(s);
}

static void set_field(struct xstate *x, enum field f)
{
	struct store_dmarc_report *r = &x->rep->r;
	struct store_dmarc_record *rec = x->in_record ? cur_record(x) : NULL;
	char *v;

	if (x->toverflow) {
		fail(x, "the text of <%s> is longer than %d bytes; refused", x->path, DMARC_XML_MAX_FIELD);
		return;
	}
	v = text_value(x);
	switch (f) {
	case F_NONE:
		break;
	case F_VERSION: x->version = v; break;
	case F_ORG: r->org_name = v; break;
	case F_EMAIL: r->email = v; break;
	case F_EXTRA: r->extra_contact = v; break;
	case F_REPORT_ID: r->report_id = v; break;
	case F_BEGIN: x->begin = v; break;
	case F_END: x->end = v; break;
	case F_DOMAIN: lower(v); r->domain = v; break;
	case F_ADKIM: x->adkim = v; break;
	case F_ASPF: x->aspf = v; break;
	case F_P: x->pol_p = v; break;
	case F_SP: x->pol_sp = v; break;
	case F_NP: x->pol_np = v; break;
	case F_PCT: x->pct = v; break;
	case F_FO: x->fo = v; break;
	case F_TESTING: x->testing = v; break;
	case F_SOURCE_IP: if (rec) rec->source_ip = v; break;
	case F_COUNT: x->count = v; break;
	case F_DISPOSITION: lower(v); if (rec) rec->disposition = v; break;
	case F_PE_DKIM: lower(v); if (rec) rec->dkim = v; break;
	case F_PE_SPF: lower(v); if (rec) rec->spf = v; break;
	case F_REASON_TYPE: str_copy(x->reason_type, v ? v : "", sizeof x->reason_type); break;
	case F_REASON_COMMENT: str_copy(x->reason_comment, v ? v : "", sizeof x->reason_comment); break;
	case F_ENV_TO: lower(v); if (rec) rec->envelope_to = v; break;
	case F_ENV_FROM: lower(v); if (rec) rec->envelope_from = v; break;
	case F_HEADER_FROM: lower(v); if (rec) rec->header_from = v; break;
	case F_AUTH_DOMAIN: str_copy(x->cur.domain, v ? v : "", sizeof x->cur.domain); str_lower(x->cur.domain); break;
	case F_AUTH_SELECTOR: str_copy(x->cur.selector, v ? v : "", sizeof x->cur.selector); break;
	case F_AUTH_SCOPE: str_copy(x->cur.scope, v ? v : "", sizeof x->cur.scope); break;
	case F_AUTH_RESULT: str_copy(x->cur.result, v ? v : "", sizeof x->cur.result); str_lower(x->cur.result); break;
	}
}

static void XMLCALL on_start(void *arg, const XML_Char *name, const XML_Char **atts)
{
	struct xstate *x = arg;
	const char *local = local_name(name);
	size_t ll = strlen(local);

	(void)atts;
	if (x->failed)
		return;
	x->tlen = 0;
	x->toverflow = 0;
	if (x->depth == 0) {
		if (x->seen_root || strcmp(local, "feedback")) {
			fail(x, "not a DMARC aggregate report: the root element is <%.64s>, not <feedback>", local);
			return;
		}
		x->seen_root = 1;
		x->is_dmarc2 = !strncmp(name, NS_DMARC2 "|", sizeof NS_DMARC2);
		x->depth = 1;
		x->path[0] = '\0';
		x->plen[1] = 0;
		return;
	}
	if (x->depth >= DMARC_XML_MAX_DEPTH) {
		fail(x, "elements are nested deeper than %d levels; refused", DMARC_XML_MAX_DEPTH);
		return;
	}
	if (ll > 63)
		ll = 63; /* a long unknown name: only its start matters for matching */
	{
		size_t at = x->plen[x->depth];
		if (at) {
			x->path[at++] = '/';
		}
		memcpy(x->path + at, local, ll);
		at += ll;
		x->path[at] = '\0';
		x->depth++;
		x->plen[x->depth] = at;
	}
	if (x->depth == 2 && !strcmp(x->path, "record")) {
		start_record(x);
	} else if (x->in_record && (!strcmp(x->path, "record/auth_results/dkim") ||
				    !strcmp(x->path, "record/auth_results/spf"))) {
		if (x->nauth >= DMARC_XML_MAX_AUTH) {
			fail(x, "record %zu has more than %d auth_results; refused", x->rep->r.nrecords, DMARC_XML_MAX_AUTH);
			return;
		}
		memset(&x->cur, 0, sizeof x->cur);
		x->cur.spf = !strcmp(x->path, "record/auth_results/spf");
	} else if (x->in_record && !strcmp(x->path, "record/row/policy_evaluated/reason")) {
		x->reason_type[0] = x->reason_comment[0] = '\0';
	}
}

static void XMLCALL on_end(void *arg, const XML_Char *name)
{
	struct xstate *x = arg;
	(void)name;
	if (x->failed || x->depth == 0)
		return;
	if (x->depth == 1) {
		x->depth = 0;
		return;
	}
	for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
		if (!strcmp(fields[i].path, x->path)) {
			if (!strncmp(x->path, "record", 6) && !x->in_record)
				break;
			set_field(x, fields[i].f);
			break;
		}
	}
	if (x->failed)
		return;
	if (x->in_record) {
		if (!strcmp(x->path, "record")) {
			end_record(x);
		} else if (!strcmp(x->path, "record/auth_results/dkim") || !strcmp(x->path, "record/auth_results/spf")) {
			x->auth[x->nauth++] = x->cur;
		} else if (!strcmp(x->path, "record/row/policy_evaluated/reason") &&
			   (x->reason_type[0] || x->reason_comment[0])) {
			size_t l = strlen(x->reasons);
			snprintf(x->reasons + l, sizeof x->reasons - l, "%s%s%s%s", l ? "; " : "", x->reason_type,
				 x->reason_comment[0] ? ": " : "", x->reason_comment);
		}
	}
	x->depth--;
	x->path[x->plen[x->depth]] = '\0';
	x->tlen = 0;
	x->toverflow = 0;
}

static void XMLCALL on_text(void *arg, const XML_Char *s, int len)
{
	struct xstate *x = arg;
	if (x->failed || len <= 0)
		return;
	if (x->tlen + (size_t)len > DMARC_XML_MAX_FIELD) {
		x->toverflow = 1;
		return;
	}
	memcpy(x->text + x->tlen, s, (size_t)len);
	x->tlen += (size_t)len;
}

static void XMLCALL on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
			       int has_internal_subset)
{
	(void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
	fail(arg, "the report has a DOCTYPE declaration; refused (entity expansion and external entities are "
		  "never processed)");
}

static void XMLCALL on_entity_decl(void *arg, const XML_Char *name, int is_param, const XML_Char *value, int vlen,
				   const XML_Char *base, const XML_Char *sysid, const XML_Char *pubid,
				   const XML_Char *notation)
{
	(void)name, (void)is_param, (void)value, (void)vlen, (void)base, (void)sysid, (void)pubid, (void)notation;
	fail(arg, "the report declares an entity; refused");
}

/* windows-1252 bytes 0x80-0x9f (-1: undefined). */
static const int cp1252_high[32] = {
	0x20AC, -1,     0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
	0x2039, 0x0152, -1,     0x017D, -1,     -1,     0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
	0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, -1,     0x017E, 0x0178,
};

static int XMLCALL on_unknown_encoding(void *data, const XML_Char *name, XML_Encoding *info)
{
	(void)data;
	if (strcasecmp(name, "windows-1252") && strcasecmp(name, "cp1252"))
		return XML_STATUS_ERROR;
	for (int i = 0; i < 256; i++)
		info->map[i] = i >= 0x80 && i < 0xa0 ? cp1252_high[i - 0x80] : i;
	info->data = NULL;
	info->convert = NULL;
	info->release = NULL;
	return XML_STATUS_OK;
}

/* Unix time from "1337270400" or "1337270400.0". */
static int parse_time(const char *s, int64_t *out)
{
	char *end;
	unsigned long long v;
	if (!s || *s < '0' || *s > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (*end == '.') {
		end++;
		while (*end >= '0' && *end <= '9')
			end++;
	}
	if (*end || v > 253402300799ull) /* 9999-12-31 */
		return -1;
	*out = (int64_t)v;
	return 0;
}

void dmarc_report_free(struct dmarc_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nstrings; i++)
		free(r->strings[i]);
	free(r->strings);
	free(r->records);
	free(r);
}

struct dmarc_report *dmarc_xml_parse(const char *xml, size_t len, size_t max_records, char *why, size_t whysize)
{
	struct xstate *x = xcalloc(1, sizeof *x);
	struct dmarc_report *rep = xcalloc(1, sizeof *rep);
	enum XML_Status st = XML_STATUS_OK;
	char pol[512];
	size_t pl = 0;

	x->rep = rep;
	x->max_records = max_records;
	x->p = XML_ParserCreateNS(NULL, NS_SEP);
	if (!x->p)
		abort();
	XML_SetUserData(x->p, x);
	XML_SetElementHandler(x->p, on_start, on_end);
	XML_SetCharacterDataHandler(x->p, on_text);
	XML_SetStartDoctypeDeclHandler(x->p, on_doctype);
	XML_SetEntityDeclHandler(x->p, on_entity_decl);
	XML_SetUnknownEncodingHandler(x->p, on_unknown_encoding, NULL);
	XML_SetParamEntityParsing(x->p, XML_PARAM_ENTITY_PARSING_NEVER);
	/* Defence in depth: DOCTYPE is refused before any entity exists. */
	XML_SetBillionLaughsAttackProtectionMaximumAmplification(x->p, 10.0f);
	XML_SetBillionLaughsAttackProtectionActivationThreshold(x->p, 1024 * 1024);
	/* expat takes an int length: feed big documents in pieces. */
	while (len > 0 && st == XML_STATUS_OK && !x->failed) {
		int n = len > (1 << 30) ? (1 << 30) : (int)len;
		st = XML_Parse(x->p, xml, n, (size_t)n == len);
		xml += n;
		len -= (size_t)n;
	}
	if (st == XML_STATUS_OK && !x->failed && !x->seen_root)
		fail(x, "the report is empty");
	if (!x->failed && st != XML_STATUS_OK)
		snprintf(x->why, sizeof x->why, "the XML is not well-formed: %s at line %lu, column %lu",
			 XML_ErrorString(XML_GetErrorCode(x->p)), (unsigned long)XML_GetCurrentLineNumber(x->p),
			 (unsigned long)XML_GetCurrentColumnNumber(x->p)),
			x->failed = 1;
	XML_ParserFree(x->p);
	if (!x->failed) {
		struct store_dmarc_report *r = &rep->r;
		if (!r->report_id)
			fail(x, "report_metadata has no report_id");
		else if (!r->domain)
			fail(x, "policy_published has no domain");
		else if (!x->begin || parse_time(x->begin, &r->begin) < 0)
			fail(x, "date_range begin is missing or not a Unix time");
		else if (!x->end || parse_time(x->end, &r->end) < 0)
			fail(x, "date_range end is missing or not a Unix time");
	}
	if (x->failed) {
		str_copy(why, x->why, whysize);
		dmarc_report_free(rep);
		free(x);
		return NULL;
	}
	if (!rep->r.org_name)
		rep->r.org_name = "";
	rep->r.format = x->is_dmarc2 ? "dmarc-2.0" : "rfc7489";
	rep->r.records = rep->records;
	{
		const char *names[] = { "p", "sp", "np", "pct", "adkim", "aspf", "fo", "testing" };
		const char *vals[] = { x->pol_p, x->pol_sp, x->pol_np, x->pct, x->adkim, x->aspf, x->fo, x->testing };
		pol[0] = '\0';
		for (size_t i = 0; i < ARRAY_LEN(names); i++) {
			int w;
			if (!vals[i])
				continue;
			w = snprintf(pol + pl, sizeof pol - pl, "%s%s=%s", pl ? " " : "", names[i], vals[i]);
			if (w < 0 || (size_t)w >= sizeof pol - pl)
				break;
			pl += (size_t)w;
		}
		if (pl)
			rep->r.policy = keep(rep, pol, pl);
	}
	free(x);
	return rep;
}

/*
 * report: see report.h. What a blob is, is decided by its bytes: gzip and
 * zip by their magic numbers, XML by a '<' (after white space and a UTF-8
 * byte order mark, or a UTF-16 one), JSON by a '{' or '['; anything else is taken
 * for a mail and searched for its report attachment. Names and content
 * types are not trusted for this.
 */
#include "report/report.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "report/mime.h"
#include "report/unpack.h"
#include "store/store.h"

enum shape { SHAPE_XML, SHAPE_JSON, SHAPE_OTHER };

static enum shape shape_of(const char *s, size_t len)
{
	size_t i = 0;
	if (len >= 2 && (((unsigned char)s[0] == 0xfe && (unsigned char)s[1] == 0xff) ||
			 ((unsigned char)s[0] == 0xff && (unsigned char)s[1] == 0xfe)))
		return SHAPE_XML; /* UTF-16 with a byte order mark */
	if (len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
		i = 3;
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	if (i < len && s[i] == '<')
		return SHAPE_XML;
	if (i < len && (s[i] == '{' || s[i] == '['))
		return SHAPE_JSON; /* a TLS report is an object; an array is JSON all the same */
	return SHAPE_OTHER;
}

/* Parses an unpacked report text. */
static struct report *parse_text(const char *text, size_t len, const struct report_limits *lim, char *why,
				 size_t whysize)
{
	struct report *r;
	enum shape sh = shape_of(text, len);

	if (sh == SHAPE_OTHER) {
		snprintf(why, whysize, "the report is neither XML (DMARC) nor JSON (TLS-RPT)");
		return NULL;
	}
	r = xcalloc(1, sizeof *r);
	if (sh == SHAPE_XML) {
		r->kind = REPORT_DMARC;
		r->dmarc = dmarc_xml_parse(text, len, lim->max_records, why, whysize);
	} else {
		r->kind = REPORT_TLS;
		r->tls = tlsrpt_parse(text, len, lim->max_records, why, whysize);
	}
	if (!r->dmarc && !r->tls) {
		free(r);
		return NULL;
	}
	return r;
}

struct report *report_parse(const char *data, size_t len, const struct report_limits *lim, char *why,
			    size_t whysize)
{
	struct mime_found found = { 0 };
	const char *blob = data;
	size_t blen = len;
	char *text = NULL, via[160];
	size_t tlen;
	enum unpack_format fmt;
	struct report *r;

	if (len > REPORT_MAX_INPUT(lim)) {
		snprintf(why, whysize, "the input is %zu bytes, more than a report of [reports] max_size can be", len);
		return NULL;
	}
	if (len == 0) {
		snprintf(why, whysize, "the input is empty");
		return NULL;
	}
	via[0] = '\0';
	if (unpack_detect((const unsigned char *)data, len) == UNPACK_PLAIN && shape_of(data, len) == SHAPE_OTHER) {
		int rc = mime_find_report(data, len, lim->max_size, &found, why, whysize);
		if (rc <= 0)
			return NULL;
		blob = found.data;
		blen = found.len;
		snprintf(via, sizeof via, "mail attachment %s, ", found.content_type[0] ? found.content_type : "untyped");
	}
	if (unpack_any((const unsigned char *)blob, blen, lim->max_size, &text, &tlen, &fmt, why, whysize) < 0) {
		free(found.data);
		return NULL;
	}
	free(found.data);
	r = parse_text(text, tlen, lim, why, whysize);
	free(text);
	if (r)
		snprintf(r->via, sizeof r->via, "%s%s", via, unpack_format_name(fmt));
	return r;
}

void report_free(struct report *r)
{
	if (!r)
		return;
	dmarc_report_free(r->dmarc);
	tlsrpt_report_free(r->tls);
	free(r);
}

const char *report_kind_name(enum report_kind k)
{
	return k == REPORT_DMARC ? "dmarc" : "tls";
}

const char *report_org(const struct report *r)
{
	return r->kind == REPORT_DMARC ? r->dmarc->r.org_name : r->tls->r.org_name;
}

const char *report_id(const struct report *r)
{
	return r->kind == REPORT_DMARC ? r->dmarc->r.report_id : r->tls->r.report_id;
}

size_t report_records(const struct report *r)
{
	return r->kind == REPORT_DMARC ? r->dmarc->r.nrecords : r->tls->r.npolicies;
}

long long report_messages(const struct report *r)
{
	long long n = 0;
	if (r->kind == REPORT_DMARC) {
		for (size_t i = 0; i < r->dmarc->r.nrecords; i++)
			n += r->dmarc->r.records[i].count;
	} else {
		for (size_t i = 0; i < r->tls->r.npolicies; i++)
			n += r->tls->r.policies[i].success + r->tls->r.policies[i].failure;
	}
	return n;
}

enum report_save_rc report_save(struct store *st, const struct report *r)
{
	int rc = r->kind == REPORT_DMARC ? store_dmarc_report_add(st, &r->dmarc->r) : store_tls_report_add(st, &r->tls->r);
	return rc == STORE_OK ? REPORT_SAVED : rc == STORE_EXISTS ? REPORT_DUPLICATE : REPORT_SAVE_FAILED;
}

const char *report_save_name(enum report_save_rc rc)
{
	return rc == REPORT_SAVED ? "stored" : rc == REPORT_DUPLICATE ? "duplicate" : "failed";
}

/* Parses an address into 16 bytes (IPv4 as IPv4-mapped); *v4 says which. */
static int ip_bytes(const char *s, unsigned char out[16], int *v4)
{
	unsigned char a[4];
	if (inet_pton(AF_INET, s, a) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, a, 4);
		*v4 = 1;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		*v4 = !memcmp(out, mapped, 12);
		return 0;
	}
	return -1;
}

int report_ip_in(const char *ip, const char *cidr)
{
	unsigned char a[16], net[16];
	char host[64];
	const char *slash = strchr(cidr, '/');
	size_t n = slash ? (size_t)(slash - cidr) : strlen(cidr);
	int av4, nv4;
	long bits;

	if (n >= sizeof host)
		return 0;
	memcpy(host, cidr, n);
	host[n] = '\0';
	if (ip_bytes(ip, a, &av4) < 0 || ip_bytes(host, net, &nv4) < 0)
		return 0;
	if (av4 != nv4)
		return 0;
	bits = slash ? strtol(slash + 1, NULL, 10) : (nv4 ? 32 : 128);
	if (bits < 0 || bits > (nv4 ? 32 : 128))
		return 0;
	if (nv4)
		bits += 96;
	for (long i = 0; i < bits; i++) {
		int byte = (int)(i / 8), bit = 7 - (int)(i % 8);
		if (((a[byte] >> bit) & 1) != ((net[byte] >> bit) & 1))
			return 0;
	}
	return 1;
}

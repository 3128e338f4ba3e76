/*
 * packet: see packet.h.
 */
#include "packet.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int dns_read_name(const unsigned char *pkt, size_t len, size_t *off, char *out)
{
	size_t pos = *off, o = 0, end = 0;
	int jumps = 0;

	for (;;) {
		unsigned c;
		if (pos >= len)
			return -1;
		c = pkt[pos];
		if ((c & 0xc0) == 0xc0) {
			size_t target;
			if (pos + 1 >= len || ++jumps > DNS_MAX_POINTERS)
				return -1;
			target = ((c & 0x3f) << 8) | pkt[pos + 1];
			if (target >= pos) /* only backwards: no loops */
				return -1;
			if (!end)
				end = pos + 2;
			pos = target;
			continue;
		}
		if (c & 0xc0)
			return -1; /* the 0x40 and 0x80 label types are obsolete */
		if (c == 0) {
			if (!end)
				end = pos + 1;
			break;
		}
		if (pos + 1 + c > len || o + c + 1 > DNS_MAX_NAME)
			return -1;
		if (o)
			out[o++] = '.';
		for (unsigned i = 0; i < c; i++) {
			unsigned char ch = pkt[pos + 1 + i];
			/* A dot or a NUL inside a label cannot be represented in
			 * our presentation form, so such a name is refused. Other
			 * bytes (spaces, SPF macro output) are kept as they are;
			 * whoever logs a name escapes it. */
			if (ch == '.' || ch == 0)
				return -1;
			out[o++] = (char)tolower(ch);
		}
		pos += 1 + c;
	}
	out[o] = '\0';
	*off = end;
	return 0;
}

int dns_name_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la && a[la - 1] == '.')
		la--;
	if (lb && b[lb - 1] == '.')
		lb--;
	return la == lb && str_casecmp_n(a, b, la) == 0;
}

struct raw_rr {
	char owner[DNS_MAX_NAME + 1];
	uint16_t type, klass;
	uint32_t ttl;
	size_t rdata, rdlen;
};

static int read_rr(const unsigned char *pkt, size_t len, size_t *off, struct raw_rr *rr)
{
	if (dns_read_name(pkt, len, off, rr->owner) < 0 || *off + 10 > len)
		return -1;
	rr->type = get16(pkt + *off);
	rr->klass = get16(pkt + *off + 2);
	rr->ttl = get32(pkt + *off + 4);
	if (rr->ttl > 0x7fffffff) /* RFC 2181 section 8 */
		rr->ttl = 0;
	rr->rdlen = get16(pkt + *off + 8);
	rr->rdata = *off + 10;
	if (rr->rdata + rr->rdlen > len)
		return -1;
	*off = rr->rdata + rr->rdlen;
	return 0;
}

/* Decodes the rdata of a record we keep. Returns 0 or -1. */
static int decode(const unsigned char *pkt, size_t len, const struct raw_rr *r, struct dns_rr *out)
{
	char name[DNS_MAX_NAME + 1];
	size_t off = r->rdata, end = r->rdata + r->rdlen;

	memset(out, 0, sizeof *out);
	out->type = r->type;
	out->ttl = r->ttl;
	switch (r->type) {
	case DNS_T_A:
		if (r->rdlen != 4)
			return -1;
		memcpy(out->addr, pkt + off, 4);
		return 0;
	case DNS_T_AAAA:
		if (r->rdlen != 16)
			return -1;
		memcpy(out->addr, pkt + off, 16);
		return 0;
	case DNS_T_MX:
		if (r->rdlen < 3)
			return -1;
		out->pref = get16(pkt + off);
		off += 2;
		/* fall through: the exchange is a name */
		/* FALLTHROUGH */
	case DNS_T_PTR:
	case DNS_T_CNAME:
	case DNS_T_NS:
		if (dns_read_name(pkt, len, &off, name) < 0 || off != end)
			return -1;
		out->name = xstrdup(name);
		return 0;
	case DNS_T_TXT:
	case DNS_T_SPF: {
		/* One or more character-strings, joined (RFC 7208 section 3.3). */
		size_t o = 0;
		out->data = xmalloc(r->rdlen + 1);
		while (off < end) {
			size_t n = pkt[off++];
			if (off + n > end) {
				free(out->data);
				out->data = NULL;
				return -1;
			}
			memcpy(out->data + o, pkt + off, n);
			o += n;
			off += n;
		}
		out->data[o] = '\0';
		out->len = o;
		return 0;
	}
	default:
		out->data = xmalloc(r->rdlen + 1);
		memcpy(out->data, pkt + off, r->rdlen);
		out->data[r->rdlen] = '\0';
		out->len = r->rdlen;
		return 0;
	}
}

void dns_answer_clear(struct dns_answer *a)
{
	for (size_t i = 0; i < a->nrrs; i++) {
		free(a->rrs[i].name);
		free(a->rrs[i].data);
	}
	free(a->rrs);
	free(a->canon);
	memset(a, 0, sizeof *a);
}

void dns_answer_copy(struct dns_answer *dst, const struct dns_answer *src)
{
	*dst = *src;
	dst->canon = src->canon ? xstrdup(src->canon) : NULL;
	dst->rrs = src->nrrs ? xcalloc(src->nrrs, sizeof *dst->rrs) : NULL;
	for (size_t k = 0; k < src->nrrs; k++) {
		const struct dns_rr *s = &src->rrs[k];
		struct dns_rr *d = &dst->rrs[k];
		*d = *s;
		d->name = s->name ? xstrdup(s->name) : NULL;
		if (s->data) {
			d->data = xmalloc(s->len + 1);
			memcpy(d->data, s->data, s->len);
			d->data[s->len] = '\0';
		}
	}
}

int dns_packet_parse(const unsigned char *pkt, size_t len, const char *qname, uint16_t qtype,
		     struct dns_answer *out)
{
	uint16_t qd, an, ns;
	size_t off = 12, answer_start;
	char cur[DNS_MAX_NAME + 1], tmp[DNS_MAX_NAME + 1];
	struct raw_rr rr;
	int links = 0;

	memset(out, 0, sizeof *out);
	if (len < 12)
		return -1;
	out->rcode = pkt[3] & 0x0f;
	out->truncated = (pkt[2] & 0x02) != 0;
	qd = get16(pkt + 4);
	an = get16(pkt + 6);
	ns = get16(pkt + 8);
	for (uint16_t i = 0; i < qd; i++) {
		if (dns_read_name(pkt, len, &off, tmp) < 0 || off + 4 > len)
			return -1;
		off += 4;
	}
	answer_start = off;
	if (strlen(qname) > DNS_MAX_NAME)
		return -1;
	str_copy(cur, qname, sizeof cur);
	{
		size_t l = strlen(cur);
		if (l && cur[l - 1] == '.')
			cur[l - 1] = '\0';
	}

	/* Follow the CNAME chain: each pass over the answer section looks for
	 * a CNAME owned by the current name. */
	for (;;) {
		int moved = 0;
		off = answer_start;
		for (uint16_t i = 0; i < an; i++) {
			if (read_rr(pkt, len, &off, &rr) < 0)
				goto bad;
			if (rr.type == DNS_T_CNAME && qtype != DNS_T_CNAME && dns_name_eq(rr.owner, cur)) {
				size_t o = rr.rdata;
				if (dns_read_name(pkt, len, &o, tmp) < 0)
					goto bad;
				if (++links > DNS_MAX_CNAMES || dns_name_eq(tmp, qname)) {
					out->cname_loop = 1;
					goto done_chain;
				}
				str_copy(cur, tmp, sizeof cur);
				moved = 1;
				break;
			}
		}
		if (!moved)
			break;
	}
done_chain:
	out->canon = xstrdup(cur);
	off = answer_start;
	out->ttl = UINT32_MAX;
	for (uint16_t i = 0; i < an; i++) {
		if (read_rr(pkt, len, &off, &rr) < 0)
			goto bad;
		if (rr.type != qtype || rr.klass != 1 || !dns_name_eq(rr.owner, cur) || out->cname_loop)
			continue;
		if (out->nrrs == DNS_MAX_RRS)
			continue;
		out->rrs = xrealloc(out->rrs, (out->nrrs + 1) * sizeof *out->rrs);
		if (decode(pkt, len, &rr, &out->rrs[out->nrrs]) < 0)
			goto bad;
		if (rr.ttl < out->ttl)
			out->ttl = rr.ttl;
		out->nrrs++;
	}
	if (out->ttl == UINT32_MAX)
		out->ttl = 0;
	for (uint16_t i = 0; i < ns; i++) {
		if (read_rr(pkt, len, &off, &rr) < 0)
			break; /* the authority section is only advice */
		if (rr.type == DNS_T_SOA) {
			size_t o = rr.rdata;
			if (dns_read_name(pkt, len, &o, tmp) == 0 && dns_read_name(pkt, len, &o, tmp) == 0 &&
			    o + 20 <= rr.rdata + rr.rdlen) {
				uint32_t min = get32(pkt + o + 16);
				out->neg_ttl = min < rr.ttl ? min : rr.ttl;
			}
		}
	}
	return 0;
bad:
	dns_answer_clear(out);
	return -1;
}

void dns_rr_text(const struct dns_rr *rr, char *out, size_t n)
{
	size_t o = 0;
	switch (rr->type) {
	case DNS_T_A:
		inet_ntop(AF_INET, rr->addr, out, (socklen_t)n);
		return;
	case DNS_T_AAAA:
		inet_ntop(AF_INET6, rr->addr, out, (socklen_t)n);
		return;
	case DNS_T_MX:
		snprintf(out, n, "%u %s", rr->pref, rr->name);
		return;
	case DNS_T_PTR:
	case DNS_T_CNAME:
	case DNS_T_NS:
		snprintf(out, n, "%s", rr->name);
		return;
	case DNS_T_TXT:
	case DNS_T_SPF:
		snprintf(out, n, "%.*s", (int)rr->len, (const char *)rr->data);
		return;
	default:
		/* TLSA and the rest: usage selector type, then hex, as in zone files. */
		if (rr->type == DNS_T_TLSA && rr->len >= 3)
			o = (size_t)snprintf(out, n, "%u %u %u ", rr->data[0], rr->data[1], rr->data[2]);
		for (size_t i = rr->type == DNS_T_TLSA ? 3 : 0; i < rr->len && o + 3 < n; i++)
			o += (size_t)snprintf(out + o, n - o, "%02x", rr->data[i]);
		return;
	}
}

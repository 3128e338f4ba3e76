/*
 * packet: a pure parser of DNS response messages (RFC 1035 section 4), for
 * the answers libunbound hands us as wire-format packets.
 *
 * Hostile input is the norm: every length is checked against the packet,
 * compression pointers may only point backwards and are followed at most
 * DNS_MAX_POINTERS times, names are bounded by 255 bytes, and the number of
 * records kept is bounded by DNS_MAX_RRS. A malformed packet is an error
 * (-1), never a crash.
 *
 * The answer section is read starting at the question name, following a
 * CNAME chain (at most DNS_MAX_CNAMES links, a loop is an error) and keeping
 * the records of the asked type owned by the final name.
 */
#ifndef POSTERN_DNS_PACKET_H
#define POSTERN_DNS_PACKET_H

#include <stddef.h>
#include <stdint.h>

#define DNS_MAX_NAME 255
#define DNS_MAX_POINTERS 64
#define DNS_MAX_RRS 256
#define DNS_MAX_CNAMES 16

enum {
	DNS_T_A = 1, DNS_T_NS = 2, DNS_T_CNAME = 5, DNS_T_SOA = 6, DNS_T_PTR = 12, DNS_T_MX = 15,
	DNS_T_TXT = 16, DNS_T_AAAA = 28, DNS_T_TLSA = 52, DNS_T_SPF = 99,
};

struct dns_rr {
	uint16_t type;
	uint32_t ttl;
	uint16_t pref;          /* MX */
	unsigned char addr[16]; /* A (first 4 bytes), AAAA */
	char *name;             /* MX exchange, PTR, CNAME target; lower-cased, no final dot */
	unsigned char *data;    /* TXT: the strings joined; TLSA: raw rdata */
	size_t len;
};

struct dns_answer {
	int rcode;
	int truncated;
	struct dns_rr *rrs;
	size_t nrrs;
	char *canon;       /* the name the chain ended on */
	uint32_t ttl;      /* smallest TTL of the kept records */
	uint32_t neg_ttl;  /* from the SOA in the authority section, or 0 */
	int cname_loop;
};

/* Parses pkt (len bytes), a response to (qname, qtype). Returns 0 and
 * fills out (free with dns_answer_clear), or -1 for a malformed packet. */
int dns_packet_parse(const unsigned char *pkt, size_t len, const char *qname, uint16_t qtype,
		     struct dns_answer *out);
void dns_answer_clear(struct dns_answer *a);
/* Deep copy of src into dst (which is overwritten, not freed). */
void dns_answer_copy(struct dns_answer *dst, const struct dns_answer *src);

/* Reads a possibly compressed name at *off into out (DNS_MAX_NAME + 1
 * bytes, presentation form without the final dot, lower-cased; "" for the
 * root). Advances *off past the name as stored. Returns 0 or -1. */
int dns_read_name(const unsigned char *pkt, size_t len, size_t *off, char *out);

/* A record in zone-file presentation (without owner, TTL and type):
 * "10 mx.example.org", "192.0.2.1", the TXT text, TLSA "3 1 1 ab12...". */
void dns_rr_text(const struct dns_rr *rr, char *out, size_t n);

/* Case-insensitive name comparison ignoring one trailing dot. */
int dns_name_eq(const char *a, const char *b);

#endif

/*
 * policy/conf: the pure parsers of the [policy] weights and the [dnsbl]
 * zone lists, and the parsed form the policy modules read.
 *
 * A zone list (docs/configuration.md, section [dnsbl]) is
 *
 *     entry { ";" entry }
 *     entry = ZONE [ "=" WEIGHT ] { RULE }
 *     RULE  = CODES "=" ( WEIGHT | "error" | "ignore" )
 *     CODES = IPV4 | IPV4 "-" IPV4 | IPV4 "/" PREFIX
 *
 * e.g. "zen.spamhaus.org=3 127.0.0.2-127.0.0.3=4 127.0.0.10/31=1;
 * bl.example=2". For an answer (an A record) the first rule whose codes
 * contain it decides; with no rule, an answer in 127.255.255.0/24 (the
 * refusal and error codes of Spamhaus and others) or outside 127.0.0.0/8 is
 * an error, any other answer counts with the zone's weight (default 1 for a
 * blocklist, -1 for an allowlist). An error is logged and never a listing.
 *
 * Weights ("name=weight" separated by commas or spaces) override the
 * defaults of the named checks (policy_check_names). A weight is a decimal
 * number between -100 and 100 with at most two decimals.
 *
 * Everything here is pure: text in, struct and error text out. Bounds:
 * POLICY_MAX_ZONES zones, POLICY_MAX_RULES rules per zone.
 */
#ifndef POSTERN_POLICY_CONF_H
#define POSTERN_POLICY_CONF_H

#include <stddef.h>
#include <stdint.h>

#define POLICY_MAX_ZONES 32
#define POLICY_MAX_RULES 32
#define POLICY_MAX_WEIGHT 100.0

enum zone_action { ZONE_LISTED, ZONE_ERROR, ZONE_IGNORE };

struct zone_rule {
	uint32_t lo, hi; /* host order, inclusive */
	enum zone_action action;
	double weight;
};

struct policy_zone {
	char *name; /* lower case, no final dot */
	double weight;
	struct zone_rule *rules;
	size_t nrules;
};

struct policy_zones {
	struct policy_zone *zones;
	size_t n;
};

/* The named checks and their default weights, in this order. */
enum policy_check {
	CHECK_FCRDNS_NONE,
	CHECK_FCRDNS_MISMATCH,
	CHECK_HELO_SYNTAX,
	CHECK_HELO_OURS,
	CHECK_HELO_UNRESOLVABLE,
	CHECK_HELO_LITERAL,
	CHECK_SPF_FAIL,
	CHECK_SPF_SOFTFAIL,
	CHECK_SPF_PASS,
	CHECK_COUNT
};

struct policy_weights {
	double w[CHECK_COUNT];
};

const char *policy_check_name(enum policy_check c);
/* Fills w with the defaults. */
void policy_weights_default(struct policy_weights *w);

/* Parses text into *out (freed with policy_zones_clear). allow: the list is
 * an allowlist (default weight -1). Returns 0, or -1 with the problem in err
 * (out is then empty). */
int policy_zones_parse(const char *text, int allow, struct policy_zones *out, char *err, size_t errsize);
void policy_zones_clear(struct policy_zones *z);

/* What an answer (an IPv4 address, host order) from zone means: the action,
 * and for ZONE_LISTED the weight. */
enum zone_action policy_zone_classify(const struct policy_zone *z, uint32_t code, double *weight);

/* Applies "name=weight, ..." to w (which holds defaults). Returns 0 or -1
 * with the problem in err. */
int policy_weights_parse(const char *text, struct policy_weights *w, char *err, size_t errsize);

/* Parses a decimal weight ("-1.5", "+3", "0.25"). Returns 0 or -1. */
int policy_parse_weight(const char *s, size_t n, double *out);

#endif

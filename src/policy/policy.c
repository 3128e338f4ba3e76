/*
 * policy: see policy.h. The scoring, the decisions and the asynchronous
 * lookups of one session; the pure pieces live in conf.c (weights, zones),
 * client.c (names, HELO) and grey.c (the graylist).
 *
 * DNS queries of a session are kept in a list; each carries its kind and
 * index, and is cancelled when the session is freed or a new HELO replaces
 * the old one's lookups. Bounds: POLICY_MAX_PTR names from a PTR answer
 * are checked forward; at most POLICY_MAX_ZONES zones of each kind.
 */
#include "policy/policy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "dns/dns.h"
#include "lib/header.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/util.h"
#include "policy/client.h"
#include "policy/grey.h"
#include "policy/ratelimit.h"
#include "store/store.h"

#define POLICY_MAX_PTR 5
#define POLICY_EXPIRE_EVERY_MS (3600 * 1000LL)
#define POLICY_MAX_GREY_RCPTS 1000

struct policy {
	struct store *st;
	struct dns *dns;
	struct ratelimit *rl;
	int64_t last_expire;
	int readonly; /* `policy explain`: read the graylist, never write it */
};

enum q_kind { Q_BL, Q_WL, Q_PTR, Q_FWD, Q_HELO };

struct pquery {
	struct pquery *next;
	struct policy_sess *ps;
	enum q_kind kind;
	size_t idx;
	uint64_t id;
	char name[DNS_MAX_NAME + 1];
};

enum zstate { Z_PENDING, Z_LISTED, Z_CLEAN, Z_ERROR };

struct zres {
	enum zstate st;
	double weight;
	char detail[96]; /* the codes, or why it failed */
};

enum fc_state { FC_OFF, FC_PENDING, FC_PASS, FC_NONE, FC_MISMATCH, FC_TEMPERROR };
enum helo_res { HR_NONE, HR_PENDING, HR_OK, HR_UNRESOLVABLE, HR_TEMPERROR };

struct policy_sess {
	struct policy *p;
	const struct config *c;
	char sid[32], ip[64], local_ip[64], block[80];
	policy_ready_cb ready;
	void *arg;
	int checks;     /* [policy] enabled */
	int grey_mode;  /* 0 off, 1 suspicious, 2 all */
	struct grey_params gp;

	struct pquery *q;
	int busy;

	struct zres bl[POLICY_MAX_ZONES], wl[POLICY_MAX_ZONES];
	size_t nbl, nwl;

	enum fc_state fc;
	char fc_name[DNS_MAX_NAME + 1];
	size_t nptr, fwd_left;
	int fwd_tempfail, fwd_match;

	char *helo;
	enum helo_kind hk;
	int helo_ours;
	enum helo_res helo_res;
	int helo_left, helo_found, helo_tempfail;

	char *sender; /* normalised */
	int spf_known;
	enum spf_result spf;
	char spf_domain[DNS_MAX_NAME + 1];

	char **grey_rcpts; /* triplets to decide after DATA */
	size_t ngrey;
	char grey_note[80]; /* what graylisting did: off, passed, exempt=..., deferred */

	double score;
	char parts[1024];
	const char *decision;
};

/* ---- the server-wide object and rate limits ---------------------------- */

struct policy *policy_new(struct store *st, struct dns *dns)
{
	struct policy *p = xcalloc(1, sizeof *p);
	p->st = st;
	p->dns = dns;
	p->rl = ratelimit_new(0);
	return p;
}

void policy_set_readonly(struct policy *p)
{
	p->readonly = 1;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	ratelimit_free(p->rl);
	free(p);
}

int policy_connect_allowed(struct policy *p, const struct config *c, const char *ip)
{
	return ratelimit_take(p->rl, ip, RL_CONNECTIONS, c->rl_connections_per_minute, now_ms());
}

int policy_message_allowed(struct policy *p, const struct config *c, const char *ip, const char *auth_user)
{
	if (auth_user) {
		char key[300];
		snprintf(key, sizeof key, "auth:%s", auth_user);
		return ratelimit_take(p->rl, key, RL_MESSAGES, c->rl_auth_messages_per_hour, now_ms());
	}
	return ratelimit_take(p->rl, ip, RL_MESSAGES, c->rl_messages_per_hour, now_ms());
}

int policy_recipient_allowed(struct policy *p, const struct config *c, const char *ip, const char *auth_user)
{
	if (auth_user) {
		char key[300];
		snprintf(key, sizeof key, "auth:%s", auth_user);
		return ratelimit_take(p->rl, key, RL_RECIPIENTS, c->rl_auth_recipients_per_hour, now_ms());
	}
	return ratelimit_take(p->rl, ip, RL_RECIPIENTS, c->rl_recipients_per_hour, now_ms());
}

int policy_unknown_allowed(struct policy *p, const struct config *c, const char *ip)
{
	return ratelimit_take(p->rl, ip, RL_UNKNOWN, c->rl_unknown_per_hour, now_ms());
}

/* ---- lookups ------------------------------------------------------------- */

static void on_answer(void *arg, const struct dns_result *res);

static void query(struct policy_sess *ps, enum q_kind kind, size_t idx, const char *name, uint16_t type)
{
	struct pquery *q = xcalloc(1, sizeof *q);
	q->ps = ps;
	q->kind = kind;
	q->idx = idx;
	str_copy(q->name, name, sizeof q->name);
	q->next = ps->q;
	ps->q = q;
	ps->busy++;
	q->id = dns_query(ps->p->dns, name, type, on_answer, q);
}

static void unlink_query(struct policy_sess *ps, struct pquery *q)
{
	for (struct pquery **pp = &ps->q; *pp; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			ps->busy--;
			return;
		}
	}
}

static void cancel_queries(struct policy_sess *ps, int helo_only)
{
	struct pquery **pp = &ps->q;
	while (*pp) {
		struct pquery *q = *pp;
		if (helo_only && q->kind != Q_HELO) {
			pp = &q->next;
			continue;
		}
		*pp = q->next;
		ps->busy--;
		dns_cancel(ps->p->dns, q->id);
		free(q);
	}
}

static void zone_answer(struct policy_sess *ps, int allow, size_t idx, const struct dns_result *res)
{
	const struct policy_zone *z = allow ? &ps->c->allowlists.zones[idx] : &ps->c->blocklists.zones[idx];
	struct zres *r = allow ? &ps->wl[idx] : &ps->bl[idx];
	int listed = 0, errors = 0;
	double w = 0;
	size_t o = 0;

	r->detail[0] = '\0';
	if (res->status == DNS_NXDOMAIN || res->status == DNS_NODATA) {
		r->st = Z_CLEAN;
		return;
	}
	if (res->status != DNS_ANSWER) {
		r->st = Z_ERROR;
		snprintf(r->detail, sizeof r->detail, "%s", dns_status_name(res->status));
		log_error(ps->sid, "event=dnsbl_error zone=%s client=%s error=%s", z->name, ps->ip,
			  dns_status_name(res->status));
		return;
	}
	for (size_t i = 0; i < res->answer->nrrs; i++) {
		const unsigned char *a = res->answer->rrs[i].addr;
		uint32_t code = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
		double cw;
		enum zone_action act;
		char text[20];
		if (res->answer->rrs[i].type != DNS_T_A)
			continue;
		snprintf(text, sizeof text, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
		act = policy_zone_classify(z, code, &cw);
		if (act == ZONE_ERROR) {
			errors++;
			log_error(ps->sid, "event=dnsbl_error zone=%s client=%s code=%s error=refused_or_error_code", z->name,
				  ps->ip, text);
		} else if (act == ZONE_LISTED) {
			if (!listed || (allow ? cw < w : cw > w))
				w = cw;
			listed = 1;
		}
		if (o < sizeof r->detail - 1) {
			int n = snprintf(r->detail + o, sizeof r->detail - o, "%s%s%s", o ? "," : "", text,
					 act == ZONE_ERROR ? "(error)" : act == ZONE_IGNORE ? "(ignored)" : "");
			if (n > 0)
				o += (size_t)n < sizeof r->detail - o ? (size_t)n : sizeof r->detail - o - 1;
		}
	}
	r->st = listed ? Z_LISTED : errors ? Z_ERROR : Z_CLEAN;
	r->weight = listed ? w : 0;
	if (listed)
		log_info(ps->sid, "event=%s zone=%s client=%s codes=%s weight=%+.2f", allow ? "dnswl" : "dnsbl", z->name,
			 ps->ip, r->detail, w);
}

static void fc_finish(struct policy_sess *ps)
{
	if (ps->fwd_left)
		return;
	if (ps->fwd_match)
		ps->fc = FC_PASS;
	else if (ps->fwd_tempfail)
		ps->fc = FC_TEMPERROR;
	else
		ps->fc = FC_MISMATCH;
}

static void ptr_answer(struct policy_sess *ps, const struct dns_result *res)
{
	if (res->status == DNS_NXDOMAIN || res->status == DNS_NODATA) {
		ps->fc = FC_NONE;
		return;
	}
	if (res->status != DNS_ANSWER) {
		ps->fc = FC_TEMPERROR;
		return;
	}
	for (size_t i = 0; i < res->answer->nrrs && ps->nptr < POLICY_MAX_PTR; i++) {
		const struct dns_rr *rr = &res->answer->rrs[i];
		if (rr->type != DNS_T_PTR || !rr->name || !*rr->name)
			continue;
		ps->nptr++;
		ps->fwd_left++;
		query(ps, Q_FWD, i, rr->name, strchr(ps->ip, ':') ? DNS_T_AAAA : DNS_T_A);
	}
	if (!ps->nptr)
		ps->fc = FC_NONE;
}

static void fwd_answer(struct policy_sess *ps, const char *name, const struct dns_result *res)
{
	ps->fwd_left--;
	if (res->status == DNS_ANSWER) {
		for (size_t i = 0; i < res->answer->nrrs; i++) {
			const struct dns_rr *rr = &res->answer->rrs[i];
			char text[64];
			if (rr->type == DNS_T_A)
				snprintf(text, sizeof text, "%u.%u.%u.%u", rr->addr[0], rr->addr[1], rr->addr[2], rr->addr[3]);
			else if (rr->type != DNS_T_AAAA || !inet_ntop(AF_INET6, rr->addr, text, sizeof text))
				continue;
			if (policy_same_ip(text, ps->ip) && !ps->fwd_match) {
				ps->fwd_match = 1;
				str_copy(ps->fc_name, name, sizeof ps->fc_name);
			}
		}
	} else if (res->status == DNS_TEMPFAIL || res->status == DNS_TIMEOUT) {
		ps->fwd_tempfail = 1;
	}
	fc_finish(ps);
}

static void helo_answer(struct policy_sess *ps, const struct dns_result *res)
{
	ps->helo_left--;
	if (res->status == DNS_ANSWER)
		ps->helo_found = 1;
	else if (res->status == DNS_TEMPFAIL || res->status == DNS_TIMEOUT)
		ps->helo_tempfail = 1;
	if (ps->helo_left == 0)
		ps->helo_res = ps->helo_found ? HR_OK : ps->helo_tempfail ? HR_TEMPERROR : HR_UNRESOLVABLE;
}

static void on_answer(void *arg, const struct dns_result *res)
{
	struct pquery *q = arg;
	struct policy_sess *ps = q->ps;

	unlink_query(ps, q);
	switch (q->kind) {
	case Q_BL:
		zone_answer(ps, 0, q->idx, res);
		break;
	case Q_WL:
		zone_answer(ps, 1, q->idx, res);
		break;
	case Q_PTR:
		ptr_answer(ps, res);
		break;
	case Q_FWD:
		fwd_answer(ps, q->name, res);
		break;
	case Q_HELO:
		helo_answer(ps, res);
		break;
	}
	free(q);
	if (ps->busy == 0 && ps->ready)
		ps->ready(ps->arg); /* last: it may move the session on */
}

/* ---- the session ------------------------------------------------------- */

struct policy_sess *policy_sess_new(struct policy *p, const struct config *c, const char *sid, const char *ip,
				    const char *local_ip, policy_ready_cb ready, void *arg)
{
	struct policy_sess *ps = xcalloc(1, sizeof *ps);
	char name[DNS_MAX_NAME + 1];

	ps->p = p;
	ps->c = c;
	str_copy(ps->sid, sid ? sid : "-", sizeof ps->sid);
	str_copy(ps->ip, ip, sizeof ps->ip);
	str_copy(ps->local_ip, local_ip ? local_ip : "", sizeof ps->local_ip);
	ps->ready = ready;
	ps->arg = arg;
	ps->checks = !strcasecmp(c->policy_enabled, "yes") && p->dns;
	ps->grey_mode = !strcasecmp(c->grey_mode, "all") ? 2 : !strcasecmp(c->grey_mode, "suspicious") ? 1 : 0;
	grey_params_from_config(c, &ps->gp);
	if (grey_client_block(ip, ps->gp.ipv4_prefix, ps->gp.ipv6_prefix, ps->block, sizeof ps->block) < 0)
		str_copy(ps->block, ip, sizeof ps->block);
	ps->sender = xstrdup("");
	str_copy(ps->grey_note, ps->grey_mode ? "none" : "off", sizeof ps->grey_note);
	ps->decision = "deliver";
	ps->fc = FC_OFF;
	if (!ps->checks)
		return ps;
	ps->nbl = c->blocklists.n;
	ps->nwl = c->allowlists.n;
	for (size_t i = 0; i < ps->nbl; i++) {
		if (policy_reverse_name(ip, c->blocklists.zones[i].name, name, sizeof name) < 0) {
			ps->bl[i].st = Z_ERROR;
			continue;
		}
		query(ps, Q_BL, i, name, DNS_T_A);
	}
	for (size_t i = 0; i < ps->nwl; i++) {
		if (policy_reverse_name(ip, c->allowlists.zones[i].name, name, sizeof name) < 0) {
			ps->wl[i].st = Z_ERROR;
			continue;
		}
		query(ps, Q_WL, i, name, DNS_T_A);
	}
	if (policy_reverse_name(ip, NULL, name, sizeof name) == 0) {
		ps->fc = FC_PENDING;
		query(ps, Q_PTR, 0, name, DNS_T_PTR);
	}
	return ps;
}

void policy_sess_free(struct policy_sess *ps)
{
	if (!ps)
		return;
	cancel_queries(ps, 0);
	for (size_t i = 0; i < ps->ngrey; i++)
		free(ps->grey_rcpts[i]);
	free(ps->grey_rcpts);
	free(ps->helo);
	free(ps->sender);
	free(ps);
}

int policy_sess_active(const struct policy_sess *ps)
{
	return ps && (ps->checks || ps->grey_mode);
}

int policy_sess_busy(const struct policy_sess *ps)
{
	return ps ? ps->busy : 0;
}

void policy_sess_helo(struct policy_sess *ps, const char *helo)
{
	char addr[64];
	cancel_queries(ps, 1);
	free(ps->helo);
	ps->helo = xstrdup(helo);
	ps->hk = policy_helo_kind(helo, addr, sizeof addr);
	ps->helo_ours = policy_helo_is_ours(helo, ps->c, ps->local_ip, ps->ip);
	ps->helo_res = HR_NONE;
	ps->helo_left = ps->helo_found = ps->helo_tempfail = 0;
	if (!ps->checks || ps->hk != HELO_NAME || ps->helo_ours)
		return;
	ps->helo_res = HR_PENDING;
	ps->helo_left = 2;
	query(ps, Q_HELO, 0, helo, DNS_T_A);
	query(ps, Q_HELO, 1, helo, DNS_T_AAAA);
}

static void grey_reset(struct policy_sess *ps)
{
	for (size_t i = 0; i < ps->ngrey; i++)
		free(ps->grey_rcpts[i]);
	free(ps->grey_rcpts);
	ps->grey_rcpts = NULL;
	ps->ngrey = 0;
	str_copy(ps->grey_note, ps->grey_mode ? "none" : "off", sizeof ps->grey_note);
}

void policy_sess_mail(struct policy_sess *ps, const char *sender)
{
	char norm[STORE_GREY_KEY_MAX + 1];
	grey_normalise_sender(sender, norm, sizeof norm);
	free(ps->sender);
	ps->sender = xstrdup(norm);
	ps->spf_known = 0;
	ps->spf_domain[0] = '\0';
	grey_reset(ps);
	ps->decision = "deliver";
}

void policy_sess_spf(struct policy_sess *ps, const char *domain, enum spf_result r)
{
	ps->spf_known = 1;
	ps->spf = r;
	str_copy(ps->spf_domain, domain ? domain : "", sizeof ps->spf_domain);
	str_lower(ps->spf_domain);
}

/* ---- scoring ----------------------------------------------------------- */

struct scorer {
	double total;
	char *out;
	size_t size, len;
};

static void add_part(struct scorer *sc, const char *name, double w)
{
	int n;
	if (w == 0)
		return;
	sc->total += w;
	if (sc->len >= sc->size - 1)
		return;
	n = snprintf(sc->out + sc->len, sc->size - sc->len, "%s%s=%+.2f", sc->len ? " " : "", name, w);
	if (n > 0)
		sc->len += (size_t)n < sc->size - sc->len ? (size_t)n : sc->size - sc->len - 1;
}

/* Adds up the parts known now into ps->score and ps->parts. */
static void score(struct policy_sess *ps)
{
	const struct policy_weights *w = &ps->c->weights;
	struct scorer sc = { 0, ps->parts, sizeof ps->parts, 0 };
	char name[DNS_MAX_NAME + 16];

	ps->parts[0] = '\0';
	if (!ps->checks) {
		ps->score = 0;
		return;
	}
	for (size_t i = 0; i < ps->nbl; i++) {
		if (ps->bl[i].st != Z_LISTED)
			continue;
		snprintf(name, sizeof name, "dnsbl.%s", ps->c->blocklists.zones[i].name);
		add_part(&sc, name, ps->bl[i].weight);
	}
	for (size_t i = 0; i < ps->nwl; i++) {
		if (ps->wl[i].st != Z_LISTED)
			continue;
		snprintf(name, sizeof name, "dnswl.%s", ps->c->allowlists.zones[i].name);
		add_part(&sc, name, ps->wl[i].weight);
	}
	if (ps->fc == FC_NONE)
		add_part(&sc, policy_check_name(CHECK_FCRDNS_NONE), w->w[CHECK_FCRDNS_NONE]);
	else if (ps->fc == FC_MISMATCH)
		add_part(&sc, policy_check_name(CHECK_FCRDNS_MISMATCH), w->w[CHECK_FCRDNS_MISMATCH]);
	if (ps->helo) {
		if (ps->hk == HELO_BAD)
			add_part(&sc, policy_check_name(CHECK_HELO_SYNTAX), w->w[CHECK_HELO_SYNTAX]);
		if (ps->helo_ours)
			add_part(&sc, policy_check_name(CHECK_HELO_OURS), w->w[CHECK_HELO_OURS]);
		else if (ps->hk == HELO_LITERAL)
			add_part(&sc, policy_check_name(CHECK_HELO_LITERAL), w->w[CHECK_HELO_LITERAL]);
		if (ps->helo_res == HR_UNRESOLVABLE)
			add_part(&sc, policy_check_name(CHECK_HELO_UNRESOLVABLE), w->w[CHECK_HELO_UNRESOLVABLE]);
	}
	if (ps->spf_known) {
		if (ps->spf == SPF_FAIL)
			add_part(&sc, policy_check_name(CHECK_SPF_FAIL), w->w[CHECK_SPF_FAIL]);
		else if (ps->spf == SPF_SOFTFAIL)
			add_part(&sc, policy_check_name(CHECK_SPF_SOFTFAIL), w->w[CHECK_SPF_SOFTFAIL]);
		else if (ps->spf == SPF_PASS)
			add_part(&sc, policy_check_name(CHECK_SPF_PASS), w->w[CHECK_SPF_PASS]);
	}
	ps->score = (double)(long long)(sc.total * 100 + (sc.total >= 0 ? 0.5 : -0.5)) / 100;
}

double policy_sess_score(const struct policy_sess *ps)
{
	return ps->score;
}

const char *policy_sess_parts(const struct policy_sess *ps)
{
	return ps->parts;
}

const char *policy_decision_name(const struct policy_sess *ps)
{
	return ps->decision;
}

/* ---- graylisting -------------------------------------------------------- */

static int spf_pass(const struct policy_sess *ps)
{
	return ps->spf_known && ps->spf == SPF_PASS && *ps->spf_domain;
}

/* The client of the triplet: the SPF-passing domain, else the block. */
static const char *grey_client(const struct policy_sess *ps)
{
	return spf_pass(ps) ? ps->spf_domain : ps->block;
}

static int64_t wall_now(void)
{
	return (int64_t)wall_ms();
}

static void maybe_expire(struct policy_sess *ps)
{
	struct policy *p = ps->p;
	int64_t now = wall_now(), n = 0;
	if (!p->st || p->readonly || now - p->last_expire < POLICY_EXPIRE_EVERY_MS)
		return;
	p->last_expire = now;
	if (store_grey_expire(p->st, now - ps->gp.retry_window, now - ps->gp.expire, now - ps->gp.auto_allow_expire,
			      &n) == STORE_OK && n)
		log_info(NULL, "event=greylist_expired rows=%lld", (long long)n);
}

/* Why graylisting does not apply to this mail, or NULL. */
static const char *grey_exempt(struct policy_sess *ps, int auth)
{
	if (auth)
		return "auth";
	for (size_t i = 0; i < ps->nwl; i++)
		if (ps->wl[i].st == Z_LISTED)
			return "dnswl";
	if (ps->grey_mode == 1 && (!ps->checks || ps->score < ps->c->greylist_threshold))
		return "score";
	if (!ps->p->st)
		return NULL;
	if (grey_allowed(ps->p->st, ps->block, wall_now(), &ps->gp))
		return "allowed_client";
	if (spf_pass(ps) && grey_allowed(ps->p->st, ps->spf_domain, wall_now(), &ps->gp))
		return "allowed_domain";
	return NULL;
}

/* One triplet. Returns GREY_PASS or GREY_DEFER (and *retry_ms). */
static enum grey_verdict grey_one(struct policy_sess *ps, const char *rcpt, int64_t *retry_ms)
{
	const char *client = grey_client(ps);
	char v[400];
	enum grey_verdict g;

	*retry_ms = 0;
	if (!ps->p->st)
		return GREY_PASS;
	if (ps->p->readonly) {
		struct store_grey rec = { 0 };
		int rc = store_grey_get(ps->p->st, client, ps->sender, rcpt, &rec);
		return grey_judge(&rec, rc == STORE_OK, wall_now(), &ps->gp, retry_ms);
	}
	g = grey_check(ps->p->st, client, ps->sender, rcpt, wall_now(), &ps->gp, retry_ms);
	metric_inc(metrics_greylist_decisions(), g == GREY_PASS ? "pass" : "defer");
	log_info(ps->sid, "event=greylist client=%s sender=<%s> rcpt=<%s> result=%s retry_in_ms=%lld", client,
		 log_value(v, sizeof v, ps->sender, strlen(ps->sender)), rcpt, g == GREY_PASS ? "pass" : "defer",
		 (long long)*retry_ms);
	return g;
}

static int64_t to_seconds(int64_t ms)
{
	return (ms + 999) / 1000;
}

enum policy_action policy_sess_rcpt(struct policy_sess *ps, int auth, const char *rcpt, int64_t *retry_s)
{
	const char *why;
	int64_t retry_ms;

	*retry_s = 0;
	score(ps);
	if (ps->checks && !auth && ps->score >= ps->c->reject_threshold) {
		ps->decision = "reject";
		log_info(ps->sid, "event=policy stage=rcpt score=%.2f decision=reject parts=\"%s\"", ps->score, ps->parts);
		return POLICY_REJECT;
	}
	if (!ps->grey_mode)
		return POLICY_ACCEPT;
	maybe_expire(ps);
	why = grey_exempt(ps, auth);
	if (why) {
		if (!ps->p->readonly)
			metric_inc(metrics_greylist_decisions(), "exempt");
		snprintf(ps->grey_note, sizeof ps->grey_note, "exempt=%s", why);
		return POLICY_ACCEPT;
	}
	if (!strcasecmp(ps->c->grey_decide_at_data, "yes")) {
		if (ps->ngrey < POLICY_MAX_GREY_RCPTS) {
			ps->grey_rcpts = xrealloc(ps->grey_rcpts, (ps->ngrey + 1) * sizeof *ps->grey_rcpts);
			ps->grey_rcpts[ps->ngrey++] = xstrdup(rcpt);
		}
		str_copy(ps->grey_note, "pending", sizeof ps->grey_note);
		return POLICY_ACCEPT;
	}
	if (grey_one(ps, rcpt, &retry_ms) == GREY_DEFER) {
		ps->decision = "greylist";
		str_copy(ps->grey_note, "deferred", sizeof ps->grey_note);
		*retry_s = to_seconds(retry_ms);
		return POLICY_DEFER;
	}
	str_copy(ps->grey_note, "passed", sizeof ps->grey_note);
	return POLICY_ACCEPT;
}

enum policy_action policy_sess_data(struct policy_sess *ps, int auth, int dmarc_pass, const char **folder,
				    int64_t *retry_s)
{
	int64_t worst = 0;
	int deferred = 0;

	*folder = NULL;
	*retry_s = 0;
	score(ps);
	if (ps->ngrey) {
		if (dmarc_pass || auth) {
			str_copy(ps->grey_note, dmarc_pass ? "exempt=dmarc" : "exempt=auth", sizeof ps->grey_note);
		} else {
			for (size_t i = 0; i < ps->ngrey; i++) {
				int64_t r;
				if (grey_one(ps, ps->grey_rcpts[i], &r) == GREY_DEFER) {
					deferred = 1;
					if (r > worst)
						worst = r;
				}
			}
			str_copy(ps->grey_note, deferred ? "deferred" : "passed", sizeof ps->grey_note);
		}
		for (size_t i = 0; i < ps->ngrey; i++)
			free(ps->grey_rcpts[i]);
		free(ps->grey_rcpts);
		ps->grey_rcpts = NULL;
		ps->ngrey = 0;
	}
	if (deferred) {
		ps->decision = "greylist";
		*retry_s = to_seconds(worst);
	} else if (ps->checks && !auth && ps->score >= ps->c->junk_threshold) {
		ps->decision = "junk";
		*folder = ps->c->policy_junk_folder;
	} else {
		ps->decision = "deliver";
	}
	if (ps->checks || ps->grey_mode)
		log_info(ps->sid, "event=policy stage=data score=%.2f decision=%s greylist=%s parts=\"%s\"", ps->score,
			 ps->decision, ps->grey_note, ps->parts);
	return deferred ? POLICY_DEFER : POLICY_ACCEPT;
}

char *policy_sess_header(const struct policy_sess *ps)
{
	char *value, *field;
	if (!ps->checks)
		return NULL;
	value = xasprintf("score=%.2f decision=%s greylist=%s;%s%s", ps->score, ps->decision, ps->grey_note,
			  *ps->parts ? " " : " none", ps->parts);
	field = header_fold("X-Postern-Policy", value);
	free(value);
	return field;
}

void policy_sess_accepted(struct policy_sess *ps)
{
	int64_t now;
	if (!ps->grey_mode || !ps->p->st || ps->p->readonly || strcmp(ps->decision, "deliver"))
		return;
	now = wall_now();
	grey_count(ps->p->st, ps->block, now, &ps->gp);
	if (spf_pass(ps))
		grey_count(ps->p->st, ps->spf_domain, now, &ps->gp);
}

/* ---- the report of `postern policy explain` ------------------------------ */

void policy_sess_client(const struct policy_sess *ps, struct policy_client *out)
{
	memset(out, 0, sizeof *out);
	out->helo_resolves = -1;
	if (!ps)
		return;
	out->rdns_checked = ps->fc == FC_PASS || ps->fc == FC_NONE || ps->fc == FC_MISMATCH;
	out->fcrdns = ps->fc == FC_PASS;
	out->ptr = ps->fc != FC_NONE && *ps->fc_name ? ps->fc_name : NULL;
	if (ps->helo && (ps->helo_res == HR_OK || ps->helo_res == HR_UNRESOLVABLE))
		out->helo_resolves = ps->helo_res == HR_OK;
	for (size_t i = 0; i < ps->nbl && out->nlisted < POLICY_MAX_ZONES; i++)
		if (ps->bl[i].st == Z_LISTED)
			out->listed[out->nlisted++] = ps->c->blocklists.zones[i].name;
}

size_t policy_sess_report(struct policy_sess *ps, struct policy_report_item *it, size_t max)
{
	const struct policy_weights *w = &ps->c->weights;
	size_t n = 0;
	static const char *const zst[] = { "pending", "listed", "not listed", "error" };

#define ITEM(nm, scored_, weight_, ...)                                                  \
	do {                                                                            \
		if (n < max) {                                                          \
			snprintf(it[n].name, sizeof it[n].name, "%s", nm);              \
			snprintf(it[n].result, sizeof it[n].result, __VA_ARGS__);       \
			it[n].scored = (scored_);                                       \
			it[n].weight = (scored_) ? (weight_) : 0;                       \
			n++;                                                            \
		}                                                                       \
	} while (0)

	for (size_t i = 0; i < ps->nbl; i++) {
		char nm[128];
		snprintf(nm, sizeof nm, "dnsbl.%s", ps->c->blocklists.zones[i].name);
		ITEM(nm, ps->bl[i].st == Z_LISTED, ps->bl[i].weight, "%s%s%s", zst[ps->bl[i].st],
		     *ps->bl[i].detail ? " " : "", ps->bl[i].detail);
	}
	for (size_t i = 0; i < ps->nwl; i++) {
		char nm[128];
		snprintf(nm, sizeof nm, "dnswl.%s", ps->c->allowlists.zones[i].name);
		ITEM(nm, ps->wl[i].st == Z_LISTED, ps->wl[i].weight, "%s%s%s", zst[ps->wl[i].st],
		     *ps->wl[i].detail ? " " : "", ps->wl[i].detail);
	}
	switch (ps->fc) {
	case FC_PASS:
		ITEM("fcrdns", 0, 0, "pass (%s)", ps->fc_name);
		break;
	case FC_NONE:
		ITEM("fcrdns", 1, w->w[CHECK_FCRDNS_NONE], "no PTR record");
		break;
	case FC_MISMATCH:
		ITEM("fcrdns", 1, w->w[CHECK_FCRDNS_MISMATCH], "the PTR names do not resolve back to %s", ps->ip);
		break;
	case FC_TEMPERROR:
		ITEM("fcrdns", 0, 0, "temporary DNS error (not scored)");
		break;
	default:
		ITEM("fcrdns", 0, 0, "not checked");
		break;
	}
	if (ps->helo) {
		ITEM("helo.syntax", ps->hk == HELO_BAD, w->w[CHECK_HELO_SYNTAX], "%s",
		     ps->hk == HELO_BAD ? "invalid (not a domain name or an address literal)"
					: ps->hk == HELO_LITERAL ? "address literal" : "ok");
		ITEM("helo.ours", ps->helo_ours, w->w[CHECK_HELO_OURS], "%s",
		     ps->helo_ours ? "claims to be us" : "not us");
		if (ps->hk == HELO_LITERAL && !ps->helo_ours)
			ITEM("helo.literal", 1, w->w[CHECK_HELO_LITERAL], "address literal");
		ITEM("helo.resolves", ps->helo_res == HR_UNRESOLVABLE, w->w[CHECK_HELO_UNRESOLVABLE], "%s",
		     ps->helo_res == HR_OK ? "yes" : ps->helo_res == HR_UNRESOLVABLE ? "no A or AAAA record"
		     : ps->helo_res == HR_TEMPERROR ? "temporary DNS error (not scored)" : "not checked");
	}
	if (ps->spf_known) {
		enum policy_check ck = ps->spf == SPF_FAIL ? CHECK_SPF_FAIL : ps->spf == SPF_SOFTFAIL ? CHECK_SPF_SOFTFAIL
								      : CHECK_SPF_PASS;
		int scored = ps->spf == SPF_FAIL || ps->spf == SPF_SOFTFAIL || ps->spf == SPF_PASS;
		ITEM("spf", scored, w->w[ck], "%s (%s)", spf_result_name(ps->spf), *ps->spf_domain ? ps->spf_domain : "-");
	}
	ITEM("greylist", 0, 0, "%s (client %s)", ps->grey_note, grey_client(ps));
#undef ITEM
	return n;
}

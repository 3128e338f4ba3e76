/*
 * store: the public functions of store.h, which check their arguments and
 * dispatch to a backend through struct store_ops, and the one piece of logic
 * every backend shares: resolving a recipient (store_resolve).
 *
 * Invariants every backend can rely on:
 *   - it only ever sees valid, lower-cased addresses (address_check below);
 *   - "@domain" (a catch-all) reaches it only as an alias source.
 * A backend's struct store begins with its `const struct store_ops *`; this
 * file reads the ops through that first member and knows nothing else of it.
 *
 * Resolution (RFC 5321 leaves the meaning of a local part to us):
 *   1. the address exactly: an alias source, or else a mailbox;
 *   2. with sub-addressing, user+tag@domain as user@domain, likewise;
 *   3. the catch-all alias "@domain".
 * The first candidate that yields at least one mailbox wins, so an address
 * that exists with its "+" (a mailbox "a+b@d") matches before "a@d" does.
 * An alias takes precedence over a mailbox of the same name (as in Postfix's
 * virtual_alias_maps): "a -> a, b" keeps a copy in a and sends one to b. An
 * address met again while expanding (itself, or a loop) is not expanded a
 * second time but delivered to as a mailbox if it is one, so loops end.
 * With store_resolve_targets(), a target outside our domains (the caller
 * says which are ours) is a forwarding address: collected, not looked up.
 * Chains longer than STORE_ALIAS_DEPTH hops are cut (and logged); more than
 * STORE_MAX_TARGETS mailboxes, or four times as many lookups, is an error.
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"

/* RFC 5321 section 4.5.3.1.3 limits a path to 256 octets including "<>". */
#define STORE_ADDRESS_MAX 254

/* The only backend today (store_sqlite.c); no private header yet. */
struct store *store_sqlite_open(const char *data_dir, char *err, size_t errsize);

static const struct store_ops *ops_of(struct store *st)
{
	/* A pointer to a struct, converted, points to its first member. */
	return *(const struct store_ops *const *)(const void *)st;
}

/*
 * Checks a and writes it lower-cased to out (STORE_ADDRESS_MAX + 1 bytes).
 * A catch-all "@domain" is accepted only if catchall_ok. Returns NULL, or
 * what is wrong with a (a static string).
 */
static const char *address_check(const char *a, int catchall_ok, char *out)
{
	size_t len = strlen(a);
	const char *at = strchr(a, '@');

	if (len == 0)
		return "is empty";
	if (len > STORE_ADDRESS_MAX)
		return "is longer than 254 bytes";
	if (!at)
		return "has no '@'";
	if (strchr(at + 1, '@'))
		return "has more than one '@'";
	if (at == a && !catchall_ok)
		return "has an empty local part";
	if (!at[1])
		return "has an empty domain";
	if (a[0] == '.' || at[1] == '.')
		return "has a part that starts with '.'";
	for (const char *p = a; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c == 0x7f)
			return "contains a control character";
		if (c == ' ')
			return "contains a space";
		if (c == '/')
			return "contains '/'";
	}
	memcpy(out, a, len + 1);
	str_lower(out);
	return NULL;
}

/* For changes: log what is wrong and return STORE_INVALID, or 0. */
static int check_change(const char *op, const char *a, int catchall_ok, char *out)
{
	const char *why = address_check(a, catchall_ok, out);
	char v[STORE_ADDRESS_MAX * 4 + 8];
	if (!why)
		return 0;
	if (!catchall_ok && a[0] == '@' && !address_check(a, 1, out))
		why = "is a catch-all, which can only be an alias source";
	log_error(NULL, "store op=%s address=%s error=\"address %s\"", op, log_value(v, sizeof v, a, strlen(a)),
		  why);
	return STORE_INVALID;
}

/* For lookups (whose argument may come from a client): a malformed address
 * simply does not exist. */
static int check_lookup(const char *a, char *out)
{
	char v[STORE_ADDRESS_MAX * 4 + 8];
	const char *why = address_check(a, 0, out);
	if (!why)
		return 0;
	log_debug(NULL, "store op=lookup address=%s result=invalid reason=\"address %s\"",
		  log_value(v, sizeof v, a, strnlen(a, STORE_ADDRESS_MAX + 1)), why);
	return STORE_NOTFOUND;
}

struct store *store_open(const char *data_dir, char *err, size_t errsize)
{
	return store_sqlite_open(data_dir, err, errsize);
}

void store_close(struct store *st)
{
	if (st)
		ops_of(st)->close(st);
}

int store_user_add(struct store *st, const char *address, const char *password_hash)
{
	char a[STORE_ADDRESS_MAX + 1];
	int rc = check_change("user_add", address, 0, a);
	return rc ? rc : ops_of(st)->user_add(st, a, password_hash);
}

int store_user_del(struct store *st, const char *address)
{
	char a[STORE_ADDRESS_MAX + 1];
	int rc = check_change("user_del", address, 0, a);
	return rc ? rc : ops_of(st)->user_del(st, a);
}

int store_user_set_password(struct store *st, const char *address, const char *password_hash)
{
	char a[STORE_ADDRESS_MAX + 1];
	int rc = check_change("user_set_password", address, 0, a);
	return rc ? rc : ops_of(st)->user_set_password(st, a, password_hash);
}

int store_user_get_password(struct store *st, const char *address, char *out, size_t outsize)
{
	char a[STORE_ADDRESS_MAX + 1];
	int rc = check_lookup(address, a);
	return rc ? rc : ops_of(st)->user_get_password(st, a, out, outsize);
}

int store_user_exists(struct store *st, const char *address)
{
	char a[STORE_ADDRESS_MAX + 1];
	int rc = check_lookup(address, a);
	return rc ? rc : ops_of(st)->user_exists(st, a);
}

int store_user_list(struct store *st, store_user_cb cb, void *arg)
{
	return ops_of(st)->user_list(st, cb, arg);
}

int store_alias_add(struct store *st, const char *source, const char *target)
{
	char s[STORE_ADDRESS_MAX + 1], t[STORE_ADDRESS_MAX + 1];
	int rc = check_change("alias_add", source, 1, s);
	if (!rc)
		rc = check_change("alias_add", target, 0, t);
	return rc ? rc : ops_of(st)->alias_add(st, s, t);
}

int store_alias_del(struct store *st, const char *source, const char *target)
{
	char s[STORE_ADDRESS_MAX + 1], t[STORE_ADDRESS_MAX + 1];
	int rc = check_change("alias_del", source, 1, s);
	if (!rc && target)
		rc = check_change("alias_del", target, 0, t);
	return rc ? rc : ops_of(st)->alias_del(st, s, target ? t : NULL);
}

int store_alias_list(struct store *st, store_alias_cb cb, void *arg)
{
	return ops_of(st)->alias_list(st, cb, arg);
}

int store_verdict_add(struct store *st, const struct store_verdict *v)
{
	return ops_of(st)->verdict_add(st, v);
}

int store_verdicts_add(struct store *st, const struct store_verdict *v, size_t n)
{
	return n ? ops_of(st)->verdicts_add(st, v, n) : STORE_OK;
}

int store_verdict_list(struct store *st, int64_t since, store_verdict_cb cb, void *arg)
{
	return ops_of(st)->verdict_list(st, since, cb, arg);
}

int store_dmarc_report_add(struct store *st, const struct store_dmarc_report *r)
{
	if (!r->org_name || !r->report_id || !*r->report_id || !r->domain) {
		log_error(NULL, "store op=dmarc_report_add error=\"report without org_name, report_id or domain\"");
		return STORE_INVALID;
	}
	for (size_t i = 0; i < r->nrecords; i++) {
		if (!r->records[i].source_ip) {
			log_error(NULL, "store op=dmarc_report_add error=\"record without source_ip\"");
			return STORE_INVALID;
		}
	}
	return ops_of(st)->dmarc_report_add(st, r);
}

int store_dmarc_summary(struct store *st, int64_t since, enum store_dmarc_group by, store_dmarc_row_cb cb,
			void *arg)
{
	return ops_of(st)->dmarc_summary(st, since, by, cb, arg);
}

int store_tls_report_add(struct store *st, const struct store_tls_report *r)
{
	if (!r->org_name || !r->report_id || !*r->report_id) {
		log_error(NULL, "store op=tls_report_add error=\"report without organization-name or report-id\"");
		return STORE_INVALID;
	}
	for (size_t i = 0; i < r->npolicies; i++) {
		if (!r->policies[i].domain) {
			log_error(NULL, "store op=tls_report_add error=\"policy without policy-domain\"");
			return STORE_INVALID;
		}
		for (size_t k = 0; k < r->policies[i].nfailures; k++)
			if (!r->policies[i].failures[k].result_type) {
				log_error(NULL, "store op=tls_report_add error=\"failure without result-type\"");
				return STORE_INVALID;
			}
	}
	return ops_of(st)->tls_report_add(st, r);
}

int store_tls_summary(struct store *st, int64_t since, enum store_tls_group by, store_tls_row_cb cb, void *arg)
{
	return ops_of(st)->tls_summary(st, since, by, cb, arg);
}

/* ---- graylisting ---- */

static int grey_key_ok(const char *k)
{
	return k && strlen(k) <= STORE_GREY_KEY_MAX;
}

int store_grey_get(struct store *st, const char *client, const char *sender, const char *rcpt, struct store_grey *out)
{
	if (!grey_key_ok(client) || !grey_key_ok(sender) || !grey_key_ok(rcpt))
		return STORE_INVALID;
	return ops_of(st)->grey_get(st, client, sender, rcpt, out);
}

int store_grey_put(struct store *st, const struct store_grey *g)
{
	if (!grey_key_ok(g->client) || !grey_key_ok(g->sender) || !grey_key_ok(g->rcpt))
		return STORE_INVALID;
	return ops_of(st)->grey_put(st, g);
}

int store_grey_list(struct store *st, store_grey_cb cb, void *arg)
{
	return ops_of(st)->grey_list(st, cb, arg);
}

int store_allow_get(struct store *st, const char *key, struct store_allow *out)
{
	if (!grey_key_ok(key) || !*key)
		return STORE_INVALID;
	return ops_of(st)->allow_get(st, key, out);
}

int store_allow_put(struct store *st, const struct store_allow *a)
{
	if (!grey_key_ok(a->key) || !*a->key)
		return STORE_INVALID;
	return ops_of(st)->allow_put(st, a);
}

int store_allow_list(struct store *st, store_allow_cb cb, void *arg)
{
	return ops_of(st)->allow_list(st, cb, arg);
}

int store_grey_forget(struct store *st, const char *key, int64_t *n)
{
	*n = 0;
	if (key && !grey_key_ok(key))
		return STORE_INVALID;
	return ops_of(st)->grey_forget(st, key, n);
}

int store_grey_expire(struct store *st, int64_t unpassed_before, int64_t passed_before, int64_t allow_before,
		      int64_t *n)
{
	*n = 0;
	return ops_of(st)->grey_expire(st, unpassed_before, passed_before, allow_before, n);
}

/* The outbound queue and the delivery ledger: queue.c validates what it
 * stores, so these only dispatch. */
int store_queue_add(struct store *st, const struct store_qmsg *m, const char *const *rcpts, size_t n)
{
	return ops_of(st)->queue_add(st, m, rcpts, n);
}

int store_queue_visit(struct store *st, const char *qid, store_qmsg_cb msg_cb, store_qrcpt_cb rcpt_cb, void *arg)
{
	return ops_of(st)->queue_visit(st, qid, msg_cb, rcpt_cb, arg);
}

int store_queue_due(struct store *st, int64_t now, size_t max, store_qid_cb cb, void *arg)
{
	return ops_of(st)->queue_due(st, now, max, cb, arg);
}

int store_queue_rcpt_update(struct store *st, const struct store_qrcpt *r)
{
	return ops_of(st)->queue_rcpt_update(st, r);
}

int store_queue_set_state(struct store *st, const char *qid, const char *from, const char *to, int64_t next_attempt,
			  int *changed)
{
	return ops_of(st)->queue_set_state(st, qid, from, to, next_attempt, changed);
}

int store_queue_set_notified(struct store *st, const char *qid)
{
	return ops_of(st)->queue_set_notified(st, qid);
}

int store_queue_del(struct store *st, const char *qid)
{
	return ops_of(st)->queue_del(st, qid);
}

int store_queue_unfinished(struct store *st, const char *qid, int *count)
{
	return ops_of(st)->queue_unfinished(st, qid, count);
}

int store_ledger_add(struct store *st, const struct store_delivery *d)
{
	return ops_of(st)->ledger_add(st, d);
}

int store_ledger_list(struct store *st, int64_t since, store_delivery_cb cb, void *arg)
{
	return ops_of(st)->ledger_list(st, since, cb, arg);
}

static int mtasts_domain_ok(const char *d)
{
	size_t n = d ? strlen(d) : 0;
	if (n == 0 || n > 253)
		return 0;
	for (; *d; d++)
		if (!((*d >= 'a' && *d <= 'z') || (*d >= '0' && *d <= '9') || *d == '-' || *d == '.' || *d == '_'))
			return 0;
	return 1;
}

int store_mtasts_get(struct store *st, const char *domain, struct store_mtasts *out)
{
	memset(out, 0, sizeof *out);
	if (!mtasts_domain_ok(domain))
		return STORE_INVALID;
	return ops_of(st)->mtasts_get(st, domain, out);
}

int store_mtasts_put(struct store *st, const struct store_mtasts *m)
{
	if (!mtasts_domain_ok(m->domain) || !m->id || !m->policy)
		return STORE_INVALID;
	return ops_of(st)->mtasts_put(st, m);
}

void store_mtasts_clear(struct store_mtasts *m)
{
	if (!m)
		return;
	free(m->domain);
	free(m->id);
	free(m->policy);
	memset(m, 0, sizeof *m);
}

int store_route_put(struct store *st, const struct store_route *r)
{
	return ops_of(st)->route_put(st, r);
}

int store_route_list(struct store *st, const char *key, store_route_cb cb, void *arg)
{
	return ops_of(st)->route_list(st, key, cb, arg);
}

int store_route_forget(struct store *st, const char *key, int *n)
{
	*n = 0;
	return ops_of(st)->route_forget(st, key, n);
}

/* ---- resolution ---- */

struct strv {
	char **v;
	size_t n;
};

static int strv_has(const struct strv *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (!strcmp(sv->v[i], s))
			return 1;
	return 0;
}

static void strv_push(struct strv *sv, const char *s)
{
	sv->v = xrealloc(sv->v, (sv->n + 1) * sizeof *sv->v);
	sv->v[sv->n++] = xstrdup(s);
}

struct resolver {
	struct store *st;
	const char *rcpt;  /* for log lines */
	struct strv out;   /* mailboxes found, no duplicates */
	struct strv fwd;   /* outside addresses found, no duplicates */
	int (*is_local)(void *, const char *); /* NULL: every target is local */
	void *is_local_arg;
	struct strv seen;  /* aliases expanded for the current candidate */
	size_t budget;     /* lookups left */
	int rc;            /* first error, or STORE_OK */
};

/* Collects the targets of one alias; stops (and fails) past the budget. */
struct collect {
	struct resolver *r;
	struct strv targets;
};

static int collect_target(void *arg, const char *source, const char *target)
{
	struct collect *c = arg;
	(void)source;
	if (c->targets.n >= STORE_MAX_TARGETS || c->r->budget == 0) {
		c->r->rc = STORE_INVALID;
		return 1;
	}
	c->r->budget--;
	strv_push(&c->targets, target);
	return 0;
}

static void fail(struct resolver *r, int rc, const char *why)
{
	char v[STORE_ADDRESS_MAX * 4 + 8];
	if (r->rc == STORE_OK)
		r->rc = rc;
	log_error(NULL, "store op=resolve rcpt=%s error=\"%s\"", log_value(v, sizeof v, r->rcpt, strlen(r->rcpt)),
		  why);
}

/* addr as a mailbox: added to the result if it exists. */
static void deliver_to(struct resolver *r, const char *addr)
{
	int rc;
	if (addr[0] == '@' || strv_has(&r->out, addr) || strv_has(&r->fwd, addr))
		return;
	if (r->is_local && !r->is_local(r->is_local_arg, strchr(addr, '@') + 1)) {
		if (r->out.n + r->fwd.n >= STORE_MAX_TARGETS) {
			fail(r, STORE_INVALID, "aliases expand to more than STORE_MAX_TARGETS (1000) addresses");
			return;
		}
		strv_push(&r->fwd, addr);
		return;
	}
	if (r->budget == 0) {
		fail(r, STORE_INVALID, "aliases need too many lookups");
		return;
	}
	r->budget--;
	rc = ops_of(r->st)->user_exists(r->st, addr);
	if (rc == STORE_OK) {
		if (r->out.n >= STORE_MAX_TARGETS) {
			fail(r, STORE_INVALID, "aliases expand to more than STORE_MAX_TARGETS (1000) mailboxes");
			return;
		}
		strv_push(&r->out, addr);
	} else if (rc != STORE_NOTFOUND) {
		fail(r, rc, "mailbox lookup failed");
	}
}

static void expand(struct resolver *r, const char *addr, int depth)
{
	struct collect c = { .r = r };
	int rc;

	if (r->rc != STORE_OK)
		return;
	if (r->budget == 0) {
		fail(r, STORE_INVALID, "aliases need too many lookups");
		return;
	}
	r->budget--;
	/* Targets are collected first: following them re-uses the statement. */
	rc = ops_of(r->st)->alias_targets(r->st, addr, collect_target, &c);
	if (r->rc != STORE_OK) {
		fail(r, r->rc, "aliases expand too far (over STORE_MAX_TARGETS targets, or 4 times as many lookups)");
	} else if (rc < 0 && rc != STORE_NOTFOUND) {
		fail(r, rc, "alias lookup failed");
	} else if (c.targets.n == 0) {
		deliver_to(r, addr);
	} else {
		strv_push(&r->seen, addr);
		for (size_t i = 0; i < c.targets.n && r->rc == STORE_OK; i++) {
			const char *t = c.targets.v[i];
			if (strv_has(&r->seen, t)) {
				deliver_to(r, t);
			} else if (depth >= STORE_ALIAS_DEPTH) {
				char v1[STORE_ADDRESS_MAX * 4 + 8], v2[STORE_ADDRESS_MAX * 4 + 8];
				log_warn(NULL, "store op=resolve rcpt=%s alias=%s warning=\"alias chain longer than %d; "
					       "not followed\"",
					 log_value(v1, sizeof v1, r->rcpt, strlen(r->rcpt)),
					 log_value(v2, sizeof v2, addr, strlen(addr)), STORE_ALIAS_DEPTH);
			} else {
				expand(r, t, depth + 1);
			}
		}
	}
	store_strv_free(c.targets.v, c.targets.n);
}

/* Resolves one candidate; returns 1 if it yielded mailboxes. */
static int try_candidate(struct resolver *r, const char *addr)
{
	store_strv_free(r->seen.v, r->seen.n);
	r->seen.v = NULL;
	r->seen.n = 0;
	expand(r, addr, 0);
	return r->rc == STORE_OK && (r->out.n > 0 || r->fwd.n > 0);
}

int store_resolve_targets(struct store *st, const char *address, const char *delim,
			  int (*is_local)(void *arg, const char *domain), void *arg, struct store_targets *out)
{
	char a[STORE_ADDRESS_MAX + 1], cand[STORE_ADDRESS_MAX + 1];
	struct resolver r = { .st = st, .rcpt = address, .budget = 4 * STORE_MAX_TARGETS, .rc = STORE_OK,
			      .is_local = is_local, .is_local_arg = arg };
	const char *at;
	int rc;

	memset(out, 0, sizeof *out);
	rc = check_lookup(address, a);
	if (rc)
		return rc;
	at = strchr(a, '@');

	if (!try_candidate(&r, a) && r.rc == STORE_OK && delim && *delim) {
		const char *d = strstr(a, delim);
		if (d && d > a && d < at) {
			snprintf(cand, sizeof cand, "%.*s%s", (int)(d - a), a, at);
			try_candidate(&r, cand);
		}
	}
	if (r.out.n == 0 && r.fwd.n == 0 && r.rc == STORE_OK) {
		snprintf(cand, sizeof cand, "%s", at);
		try_candidate(&r, cand);
	}
	store_strv_free(r.seen.v, r.seen.n);
	if (r.rc != STORE_OK || (r.out.n == 0 && r.fwd.n == 0)) {
		store_strv_free(r.out.v, r.out.n);
		store_strv_free(r.fwd.v, r.fwd.n);
		return r.rc != STORE_OK ? r.rc : STORE_NOTFOUND;
	}
	out->mailboxes = r.out.v;
	out->nmailboxes = r.out.n;
	out->forwards = r.fwd.v;
	out->nforwards = r.fwd.n;
	return STORE_OK;
}

int store_resolve(struct store *st, const char *address, const char *delim, char ***out, size_t *n)
{
	struct store_targets t;
	int rc = store_resolve_targets(st, address, delim, NULL, NULL, &t);
	*out = t.mailboxes;
	*n = t.nmailboxes;
	return rc;
}

void store_targets_free(struct store_targets *t)
{
	store_strv_free(t->mailboxes, t->nmailboxes);
	store_strv_free(t->forwards, t->nforwards);
	memset(t, 0, sizeof *t);
}

void store_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Aggregates (deliverability, dashboard): nothing to check but the
 * arguments' presence; the backend binds them as parameters. */
int store_ledger_daily(struct store *st, int64_t since, store_ledger_day_cb cb, void *arg)
{
	return ops_of(st)->ledger_daily(st, since, cb, arg);
}

int store_ledger_reasons(struct store *st, int64_t since, size_t max, store_ledger_reason_cb cb, void *arg)
{
	return ops_of(st)->ledger_reasons(st, since, max, cb, arg);
}

int store_ledger_recent(struct store *st, const char *provider, int64_t since, size_t max, store_delivery_cb cb,
			void *arg)
{
	if (!provider)
		return STORE_INVALID;
	return ops_of(st)->ledger_recent(st, provider, since, max, cb, arg);
}

int store_dmarc_daily(struct store *st, int64_t since, size_t max, store_dmarc_day_cb cb, void *arg)
{
	return ops_of(st)->dmarc_daily(st, since, max, cb, arg);
}

int store_tls_daily(struct store *st, int64_t since, store_tls_day_cb cb, void *arg)
{
	return ops_of(st)->tls_daily(st, since, cb, arg);
}

int store_queue_counts(struct store *st, struct store_queue_counts *out)
{
	return ops_of(st)->queue_counts(st, out);
}

int store_queue_domains(struct store *st, size_t max, store_queue_domain_cb cb, void *arg)
{
	return ops_of(st)->queue_domains(st, max, cb, arg);
}

int store_grey_stats(struct store *st, struct store_grey_stats *out)
{
	return ops_of(st)->grey_stats(st, out);
}

/*
 * store_sqlite: the SQLite backend of the store (see store.h).
 *
 * One file, DATA_DIR/state.db, in WAL mode: the daemon reads it while
 * `postern user ...` writes it from another process, and neither blocks the
 * other for longer than one short transaction (busy_timeout covers the rest).
 * The file holds password hashes, so it is created mode 0600 before SQLite
 * opens it; SQLite gives its -wal and -shm files the same mode.
 *
 * Schema: the table schema_version holds one row, the version of the layout.
 * store_sqlite_open() runs every migration above that version, each in its
 * own IMMEDIATE transaction that re-reads the version first, so two processes
 * opening a new database at once cannot both migrate it. A database from a
 * newer postern (a version we do not know) is refused rather than guessed at.
 *
 * Trust: the arguments arrive from store.c already validated and lower-cased;
 * this file only binds them as parameters, never into SQL text.
 *
 * Statements are prepared once per store, on first use, and reset after each
 * use. A statement is never stepped re-entrantly: the list functions finish
 * (or reset) their statement before returning, and a callback that calls back
 * into the store uses other statements, or the same one only after the outer
 * loop ends (store_resolve collects targets before following them).
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

/* The backend entry point; store.c declares it too (no private header yet). */
struct store *store_sqlite_open(const char *data_dir, char *err, size_t errsize);

enum stmt_id {
	ST_USER_ADD,
	ST_USER_DEL,
	ST_USER_SET_PASSWORD,
	ST_USER_GET_PASSWORD,
	ST_USER_EXISTS,
	ST_USER_LIST,
	ST_ALIAS_ADD,
	ST_ALIAS_DEL,
	ST_ALIAS_DEL_ALL,
	ST_ALIAS_TARGETS,
	ST_ALIAS_LIST,
	ST_VERDICT_ADD,
	ST_VERDICT_LIST,
	ST_GREY_GET,
	ST_GREY_PUT,
	ST_GREY_LIST,
	ST_ALLOW_GET,
	ST_ALLOW_PUT,
	ST_ALLOW_LIST,
	ST_QMSG_ADD,
	ST_QRCPT_ADD,
	ST_QMSG_ONE,
	ST_QMSG_ALL,
	ST_QRCPT_OF,
	ST_QUEUE_DUE,
	ST_QRCPT_UPDATE,
	ST_QRCPT_SET,
	ST_QRCPT_SET_ANY,
	ST_QMSG_NOTIFIED,
	ST_QMSG_DEL,
	ST_QRCPT_DEL,
	ST_QRCPT_UNFINISHED,
	ST_LEDGER_ADD,
	ST_LEDGER_LIST,
	ST_MTASTS_GET,
	ST_MTASTS_PUT,
	ST_ROUTE_PUT,
	ST_ROUTE_ONE,
	ST_ROUTE_ALL,
	ST_ROUTE_DEL,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_USER_ADD] = "INSERT INTO mailbox(address, password_hash, created) VALUES (?1, ?2, ?3)",
	[ST_USER_DEL] = "DELETE FROM mailbox WHERE address = ?1",
	[ST_USER_SET_PASSWORD] = "UPDATE mailbox SET password_hash = ?2 WHERE address = ?1",
	[ST_USER_GET_PASSWORD] = "SELECT password_hash FROM mailbox WHERE address = ?1",
	[ST_USER_EXISTS] = "SELECT 1 FROM mailbox WHERE address = ?1",
	[ST_USER_LIST] = "SELECT address, password_hash IS NOT NULL AND password_hash <> '' "
			 "FROM mailbox ORDER BY address",
	[ST_ALIAS_ADD] = "INSERT INTO alias(source, target) VALUES (?1, ?2)",
	[ST_ALIAS_DEL] = "DELETE FROM alias WHERE source = ?1 AND target = ?2",
	[ST_ALIAS_DEL_ALL] = "DELETE FROM alias WHERE source = ?1",
	[ST_ALIAS_TARGETS] = "SELECT source, target FROM alias WHERE source = ?1 ORDER BY target",
	[ST_ALIAS_LIST] = "SELECT source, target FROM alias ORDER BY source, target",
	[ST_VERDICT_ADD] = "INSERT INTO auth_verdict(received, source_ip, helo, envelope_from, header_from, "
			   "spf_domain, spf_result, dkim, dmarc_result, dmarc_policy, disposition, "
			   "policy_published, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
	[ST_VERDICT_LIST] = "SELECT received, source_ip, helo, envelope_from, header_from, spf_domain, spf_result, "
			    "dkim, dmarc_result, dmarc_policy, disposition, policy_published, reason "
			    "FROM auth_verdict WHERE received >= ?1 ORDER BY received, id",
	[ST_GREY_GET] = "SELECT first_seen, last_seen, passed, attempts FROM greylist "
			"WHERE client = ?1 AND sender = ?2 AND rcpt = ?3",
	[ST_GREY_PUT] = "INSERT OR REPLACE INTO greylist(client, sender, rcpt, first_seen, last_seen, passed, attempts) "
			"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_GREY_LIST] = "SELECT client, sender, rcpt, first_seen, last_seen, passed, attempts FROM greylist "
			 "ORDER BY client, sender, rcpt",
	[ST_ALLOW_GET] = "SELECT count, first_seen, last_seen, manual FROM greylist_allow WHERE key = ?1",
	[ST_ALLOW_PUT] = "INSERT OR REPLACE INTO greylist_allow(key, count, first_seen, last_seen, manual) "
			 "VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_ALLOW_LIST] = "SELECT key, count, first_seen, last_seen, manual FROM greylist_allow ORDER BY key",
	[ST_QMSG_ADD] = "INSERT INTO queue_msg(qid, mail_from, queued, size, body_offset, envid, ret_full, body_8bit, "
			"smtputf8, origin, delay_notified) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0)",
	[ST_QRCPT_ADD] = "INSERT OR IGNORE INTO queue_rcpt(qid, rcpt, state, attempts, next_attempt, last_attempt) "
			 "VALUES (?1, ?2, 'pending', 0, ?3, 0)",
#define QMSG_COLS "qid, mail_from, queued, size, body_offset, envid, ret_full, body_8bit, smtputf8, origin, delay_notified"
	[ST_QMSG_ONE] = "SELECT " QMSG_COLS " FROM queue_msg WHERE qid = ?1",
	[ST_QMSG_ALL] = "SELECT " QMSG_COLS " FROM queue_msg ORDER BY queued, qid",
	[ST_QRCPT_OF] = "SELECT qid, rcpt, state, attempts, next_attempt, last_attempt, last_status, last_reply, last_mx "
			"FROM queue_rcpt WHERE qid = ?1 ORDER BY rowid",
	[ST_QUEUE_DUE] = "SELECT qid FROM queue_rcpt WHERE (state = 'pending' AND next_attempt <= ?1) OR state = 'failed' "
			 "GROUP BY qid ORDER BY min(next_attempt) LIMIT ?2",
	[ST_QRCPT_UPDATE] = "UPDATE queue_rcpt SET state = ?3, attempts = ?4, next_attempt = ?5, last_attempt = ?6, "
			    "last_status = ?7, last_reply = ?8, last_mx = ?9 WHERE qid = ?1 AND rcpt = ?2",
	[ST_QRCPT_SET] = "UPDATE queue_rcpt SET state = ?3, next_attempt = ?4 WHERE qid = ?1 AND state = ?2",
	[ST_QRCPT_SET_ANY] = "UPDATE queue_rcpt SET state = ?3, next_attempt = ?4 "
			     "WHERE qid = ?1 AND state IN ('pending', 'held')",
	[ST_QMSG_NOTIFIED] = "UPDATE queue_msg SET delay_notified = 1 WHERE qid = ?1",
	[ST_QMSG_DEL] = "DELETE FROM queue_msg WHERE qid = ?1",
	[ST_QRCPT_DEL] = "DELETE FROM queue_rcpt WHERE qid = ?1",
	[ST_QRCPT_UNFINISHED] = "SELECT count(*) FROM queue_rcpt WHERE qid = ?1 AND state IN ('pending', 'held', 'failed')",
	[ST_LEDGER_ADD] = "INSERT INTO delivery_ledger(time, qid, rcpt, domain, provider, route, route_reason, mx, ip, "
			  "outcome, code, status, reply, tls_version, tls_cipher, tls_verified, tls_policy, tls_policy_ok, "
			  "tls_failure) "
			  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
	[ST_LEDGER_LIST] = "SELECT time, qid, rcpt, domain, provider, route, route_reason, mx, ip, outcome, code, status, "
			   "reply, tls_version, tls_cipher, tls_verified, tls_policy, tls_policy_ok, tls_failure "
			   "FROM delivery_ledger WHERE time >= ?1 "
			   "ORDER BY time, id",
	[ST_MTASTS_GET] = "SELECT id, policy, fetched, expires FROM mtasts_cache WHERE domain = ?1",
	[ST_MTASTS_PUT] = "INSERT OR REPLACE INTO mtasts_cache(domain, id, policy, fetched, expires) "
			  "VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_ROUTE_PUT] = "INSERT OR REPLACE INTO learned_route(key, provider, domain, until, learned, reason, relay) "
			 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
#define ROUTE_COLS "key, provider, domain, until, learned, reason, relay"
	[ST_ROUTE_ONE] = "SELECT " ROUTE_COLS " FROM learned_route WHERE key = ?1",
	[ST_ROUTE_ALL] = "SELECT " ROUTE_COLS " FROM learned_route ORDER BY key",
	[ST_ROUTE_DEL] = "DELETE FROM learned_route WHERE key = ?1",
};

/* Migrations: migrations[i] takes the schema from version i to i + 1. */
static const char *const migrations[] = {
	/* v1 */
	"CREATE TABLE IF NOT EXISTS mailbox ("
	"  address TEXT PRIMARY KEY,"
	"  password_hash TEXT,"
	"  created INTEGER NOT NULL"
	");"
	"CREATE TABLE IF NOT EXISTS alias ("
	"  source TEXT NOT NULL,"
	"  target TEXT NOT NULL,"
	"  PRIMARY KEY (source, target)"
	");",
	/* v2: what SPF, DKIM and DMARC said of each message received */
	"CREATE TABLE IF NOT EXISTS auth_verdict ("
	"  id INTEGER PRIMARY KEY,"
	"  received INTEGER NOT NULL,"
	"  source_ip TEXT NOT NULL,"
	"  helo TEXT, envelope_from TEXT, header_from TEXT,"
	"  spf_domain TEXT, spf_result TEXT, dkim TEXT,"
	"  dmarc_result TEXT, dmarc_policy TEXT, disposition TEXT,"
	"  policy_published TEXT, reason TEXT"
	");"
	"CREATE INDEX IF NOT EXISTS auth_verdict_received ON auth_verdict(received);",
	/* v3: DMARC aggregate reports and TLS reports received (src/report/) */
	"CREATE TABLE IF NOT EXISTS dmarc_report ("
	"  id INTEGER PRIMARY KEY,"
	"  org_name TEXT NOT NULL, report_id TEXT NOT NULL,"
	"  email TEXT, extra_contact TEXT, format TEXT,"
	"  begin_time INTEGER NOT NULL, end_time INTEGER NOT NULL,"
	"  domain TEXT NOT NULL, policy TEXT,"
	"  received INTEGER NOT NULL,"
	"  UNIQUE (org_name, report_id)"
	");"
	"CREATE INDEX IF NOT EXISTS dmarc_report_end ON dmarc_report(end_time);"
	"CREATE TABLE IF NOT EXISTS dmarc_record ("
	"  id INTEGER PRIMARY KEY,"
	"  report INTEGER NOT NULL REFERENCES dmarc_report(id) ON DELETE CASCADE,"
	"  source_ip TEXT NOT NULL, count INTEGER NOT NULL,"
	"  disposition TEXT, dkim TEXT, spf TEXT, reason TEXT,"
	"  envelope_to TEXT, envelope_from TEXT, header_from TEXT, auth_results TEXT"
	");"
	"CREATE INDEX IF NOT EXISTS dmarc_record_report ON dmarc_record(report);"
	"CREATE TABLE IF NOT EXISTS tls_report ("
	"  id INTEGER PRIMARY KEY,"
	"  org_name TEXT NOT NULL, report_id TEXT NOT NULL, contact TEXT,"
	"  begin_time INTEGER NOT NULL, end_time INTEGER NOT NULL,"
	"  received INTEGER NOT NULL,"
	"  UNIQUE (org_name, report_id)"
	");"
	"CREATE TABLE IF NOT EXISTS tls_policy ("
	"  id INTEGER PRIMARY KEY,"
	"  report INTEGER NOT NULL REFERENCES tls_report(id) ON DELETE CASCADE,"
	"  type TEXT, domain TEXT NOT NULL, mx_host TEXT, policy_string TEXT,"
	"  success INTEGER NOT NULL, failure INTEGER NOT NULL"
	");"
	"CREATE INDEX IF NOT EXISTS tls_policy_report ON tls_policy(report);"
	"CREATE TABLE IF NOT EXISTS tls_failure ("
	"  id INTEGER PRIMARY KEY,"
	"  policy INTEGER NOT NULL REFERENCES tls_policy(id) ON DELETE CASCADE,"
	"  result_type TEXT NOT NULL, sending_ip TEXT, receiving_mx TEXT, receiving_ip TEXT,"
	"  reason_code TEXT, info TEXT, count INTEGER NOT NULL"
	");"
	"CREATE INDEX IF NOT EXISTS tls_failure_policy ON tls_failure(policy);",
	/* v4: graylisting (RFC 6647): triplets, and clients and domains allowed */
	"CREATE TABLE IF NOT EXISTS greylist ("
	"  client TEXT NOT NULL, sender TEXT NOT NULL, rcpt TEXT NOT NULL,"
	"  first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
	"  passed INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 1,"
	"  PRIMARY KEY (client, sender, rcpt)"
	");"
	"CREATE TABLE IF NOT EXISTS greylist_allow ("
	"  key TEXT PRIMARY KEY,"
	"  count INTEGER NOT NULL DEFAULT 0,"
	"  first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
	"  manual INTEGER NOT NULL DEFAULT 0"
	");",
	/* v5: the outbound queue (envelopes and per-recipient state; the
	 * messages are files under DATA_DIR/queue/) and the delivery ledger */
	"CREATE TABLE IF NOT EXISTS queue_msg ("
	"  qid TEXT PRIMARY KEY,"
	"  mail_from TEXT NOT NULL,"
	"  queued INTEGER NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  body_offset INTEGER NOT NULL,"
	"  envid TEXT, ret_full INTEGER NOT NULL, body_8bit INTEGER NOT NULL, smtputf8 INTEGER NOT NULL,"
	"  origin TEXT, delay_notified INTEGER NOT NULL"
	");"
	"CREATE TABLE IF NOT EXISTS queue_rcpt ("
	"  qid TEXT NOT NULL,"
	"  rcpt TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  attempts INTEGER NOT NULL,"
	"  next_attempt INTEGER NOT NULL,"
	"  last_attempt INTEGER NOT NULL,"
	"  last_status TEXT, last_reply TEXT, last_mx TEXT,"
	"  PRIMARY KEY (qid, rcpt)"
	");"
	"CREATE INDEX IF NOT EXISTS queue_rcpt_due ON queue_rcpt(state, next_attempt);"
	"CREATE TABLE IF NOT EXISTS delivery_ledger ("
	"  id INTEGER PRIMARY KEY,"
	"  time INTEGER NOT NULL,"
	"  qid TEXT NOT NULL, rcpt TEXT NOT NULL, domain TEXT NOT NULL,"
	"  provider TEXT, route TEXT, route_reason TEXT, mx TEXT, ip TEXT,"
	"  outcome TEXT NOT NULL, code INTEGER, status TEXT, reply TEXT,"
	"  tls_version TEXT, tls_cipher TEXT, tls_verified INTEGER"
	");"
	"CREATE INDEX IF NOT EXISTS delivery_ledger_time ON delivery_ledger(time);"
	"CREATE INDEX IF NOT EXISTS delivery_ledger_domain ON delivery_ledger(domain, time);",
	/* v6: TLS policies (MTA-STS, DANE): the MTA-STS policy cache and, per
	 * ledger row, the policy applied, whether it was met, and the RFC 8460
	 * result type of a failure */
	"CREATE TABLE IF NOT EXISTS mtasts_cache ("
	"  domain TEXT PRIMARY KEY,"
	"  id TEXT NOT NULL,"
	"  policy TEXT NOT NULL,"
	"  fetched INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL"
	");"
	"ALTER TABLE delivery_ledger ADD COLUMN tls_policy TEXT;"
	"ALTER TABLE delivery_ledger ADD COLUMN tls_policy_ok INTEGER;"
	"ALTER TABLE delivery_ledger ADD COLUMN tls_failure TEXT;",
	/* v7: the latest attempts per provider (deliverability: reputation runs) */
	"CREATE INDEX IF NOT EXISTS delivery_ledger_provider ON delivery_ledger(provider, time);",
	/* v8: adaptive routing: providers (or domains) sent through the relay
	 * for a while after a reputation refusal (src/deliver/remote.c) */
	"CREATE TABLE IF NOT EXISTS learned_route ("
	"  key TEXT PRIMARY KEY,"
	"  provider TEXT NOT NULL, domain TEXT NOT NULL,"
	"  until INTEGER NOT NULL, learned INTEGER NOT NULL,"
	"  reason TEXT NOT NULL, relay INTEGER NOT NULL"
	");",
};

#define SCHEMA_VERSION ((int)ARRAY_LEN(migrations))

/* The generic part (store.c) reads ops through the first member. */
struct store {
	const struct store_ops *ops;
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmt[ST_COUNT];
};

static void db_error(struct store *st, const char *what)
{
	char v[512];
	const char *msg = sqlite3_errmsg(st->db);
	log_error(NULL, "store=sqlite path=%s op=%s error=%s", st->path, what, log_value(v, sizeof v, msg, strlen(msg)));
}

/* Returns the cached statement id, reset and with no bindings, or NULL. */
static sqlite3_stmt *stmt_get(struct store *st, enum stmt_id id)
{
	if (!st->stmt[id]) {
		if (sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[id], NULL) !=
		    SQLITE_OK) {
			db_error(st, "prepare");
			st->stmt[id] = NULL;
			return NULL;
		}
	}
	return st->stmt[id];
}

static void stmt_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

static int bind_text(struct store *st, sqlite3_stmt *s, int idx, const char *v)
{
	int rc = v ? sqlite3_bind_text(s, idx, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, idx);
	if (rc != SQLITE_OK) {
		db_error(st, "bind");
		return -1;
	}
	return 0;
}

/* Runs a statement that returns no rows. Returns STORE_OK, STORE_EXISTS on a
 * uniqueness violation, STORE_NOTFOUND if it changed nothing and
 * need_change is set, or STORE_ERROR. */
static int exec_change(struct store *st, enum stmt_id id, const char *a, const char *b, int need_change,
		       const char *what)
{
	sqlite3_stmt *s = stmt_get(st, id);
	int rc;

	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, a) < 0 || (sqlite3_bind_parameter_count(s) >= 2 && bind_text(st, s, 2, b) < 0)) {
		stmt_done(s);
		return STORE_ERROR;
	}
	if (id == ST_USER_ADD && sqlite3_bind_int64(s, 3, (sqlite3_int64)time(NULL)) != SQLITE_OK) {
		db_error(st, what);
		stmt_done(s);
		return STORE_ERROR;
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		rc = need_change && sqlite3_changes(st->db) == 0 ? STORE_NOTFOUND : STORE_OK;
	} else if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		rc = STORE_EXISTS;
	} else {
		db_error(st, what);
		rc = STORE_ERROR;
	}
	stmt_done(s);
	return rc;
}

static int sq_user_add(struct store *st, const char *address, const char *hash)
{
	return exec_change(st, ST_USER_ADD, address, hash, 0, "user_add");
}

static int sq_user_del(struct store *st, const char *address)
{
	return exec_change(st, ST_USER_DEL, address, NULL, 1, "user_del");
}

static int sq_user_set_password(struct store *st, const char *address, const char *hash)
{
	return exec_change(st, ST_USER_SET_PASSWORD, address, hash, 1, "user_set_password");
}

static int sq_user_get_password(struct store *st, const char *address, char *out, size_t outsize)
{
	sqlite3_stmt *s = stmt_get(st, ST_USER_GET_PASSWORD);
	int rc;

	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, address) < 0) {
		stmt_done(s);
		return STORE_ERROR;
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(s, 0);
		if (!h || !*h) {
			rc = STORE_NOTFOUND;
		} else if (str_copy(out, h, outsize) >= outsize) {
			log_error(NULL, "store=sqlite op=user_get_password error=\"hash longer than the buffer\"");
			rc = STORE_ERROR;
		} else {
			rc = STORE_OK;
		}
	} else if (rc == SQLITE_DONE) {
		rc = STORE_NOTFOUND;
	} else {
		db_error(st, "user_get_password");
		rc = STORE_ERROR;
	}
	stmt_done(s);
	return rc;
}

static int sq_user_exists(struct store *st, const char *address)
{
	sqlite3_stmt *s = stmt_get(st, ST_USER_EXISTS);
	int rc;

	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, address) < 0) {
		stmt_done(s);
		return STORE_ERROR;
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		rc = STORE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = STORE_NOTFOUND;
	} else {
		db_error(st, "user_exists");
		rc = STORE_ERROR;
	}
	stmt_done(s);
	return rc;
}

static int sq_user_list(struct store *st, store_user_cb cb, void *arg)
{
	sqlite3_stmt *s = stmt_get(st, ST_USER_LIST);
	int rc;

	if (!s)
		return STORE_ERROR;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *a = (const char *)sqlite3_column_text(s, 0);
		if (a && cb(arg, a, sqlite3_column_int(s, 1))) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		db_error(st, "user_list");
	stmt_done(s);
	return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

static int sq_alias_add(struct store *st, const char *source, const char *target)
{
	return exec_change(st, ST_ALIAS_ADD, source, target, 0, "alias_add");
}

static int sq_alias_del(struct store *st, const char *source, const char *target)
{
	if (target)
		return exec_change(st, ST_ALIAS_DEL, source, target, 1, "alias_del");
	return exec_change(st, ST_ALIAS_DEL_ALL, source, NULL, 1, "alias_del");
}

/* Steps s (already bound) and hands each (source, target) row to cb. */
static int alias_rows(struct store *st, sqlite3_stmt *s, store_alias_cb cb, void *arg, const char *what)
{
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *src = (const char *)sqlite3_column_text(s, 0);
		const char *dst = (const char *)sqlite3_column_text(s, 1);
		if (src && dst && cb(arg, src, dst)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		db_error(st, what);
	stmt_done(s);
	return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

static int sq_alias_targets(struct store *st, const char *source, store_alias_cb cb, void *arg)
{
	sqlite3_stmt *s = stmt_get(st, ST_ALIAS_TARGETS);
	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, source) < 0) {
		stmt_done(s);
		return STORE_ERROR;
	}
	return alias_rows(st, s, cb, arg, "alias_targets");
}

static int sq_alias_list(struct store *st, store_alias_cb cb, void *arg)
{
	sqlite3_stmt *s = stmt_get(st, ST_ALIAS_LIST);
	if (!s)
		return STORE_ERROR;
	return alias_rows(st, s, cb, arg, "alias_list");
}

static int sq_verdict_add(struct store *st, const struct store_verdict *v)
{
	sqlite3_stmt *s = stmt_get(st, ST_VERDICT_ADD);
	const char *text[] = { v->source_ip ? v->source_ip : "", v->helo, v->envelope_from, v->header_from,
			       v->spf_domain, v->spf_result, v->dkim, v->dmarc_result, v->dmarc_policy,
			       v->disposition, v->policy_published, v->reason };
	int rc;

	if (!s)
		return STORE_ERROR;
	if (sqlite3_bind_int64(s, 1, (sqlite3_int64)v->received) != SQLITE_OK) {
		db_error(st, "verdict_add");
		stmt_done(s);
		return STORE_ERROR;
	}
	for (size_t i = 0; i < ARRAY_LEN(text); i++) {
		if (bind_text(st, s, (int)i + 2, text[i]) < 0) {
			stmt_done(s);
			return STORE_ERROR;
		}
	}
	rc = sqlite3_step(s) == SQLITE_DONE ? STORE_OK : STORE_ERROR;
	if (rc != STORE_OK)
		db_error(st, "verdict_add");
	stmt_done(s);
	return rc;
}

static int sq_verdict_list(struct store *st, int64_t since, store_verdict_cb cb, void *arg)
{
	sqlite3_stmt *s = stmt_get(st, ST_VERDICT_LIST);
	int rc;

	if (!s)
		return STORE_ERROR;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)since);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_verdict v = {
			.received = sqlite3_column_int64(s, 0),
			.source_ip = (const char *)sqlite3_column_text(s, 1),
			.helo = (const char *)sqlite3_column_text(s, 2),
			.envelope_from = (const char *)sqlite3_column_text(s, 3),
			.header_from = (const char *)sqlite3_column_text(s, 4),
			.spf_domain = (const char *)sqlite3_column_text(s, 5),
			.spf_result = (const char *)sqlite3_column_text(s, 6),
			.dkim = (const char *)sqlite3_column_text(s, 7),
			.dmarc_result = (const char *)sqlite3_column_text(s, 8),
			.dmarc_policy = (const char *)sqlite3_column_text(s, 9),
			.disposition = (const char *)sqlite3_column_text(s, 10),
			.policy_published = (const char *)sqlite3_column_text(s, 11),
			.reason = (const char *)sqlite3_column_text(s, 12),
		};
		if (cb(arg, &v))
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		db_error(st, "verdict_list");
		stmt_done(s);
		return STORE_ERROR;
	}
	stmt_done(s);
	return STORE_OK;
}

static int exec_sql(struct store *st, const char *sql, char *err, size_t errsize);
/* ---- reports ---------------------------------------------------------- */

/* Prepares sql (not cached: reports are rare and big). */
static sqlite3_stmt *prepare(struct store *st, const char *sql, const char *what)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		db_error(st, what);
		return NULL;
	}
	return s;
}

/* Binds texts[0..n) to ?first.. . */
static int bind_texts(struct store *st, sqlite3_stmt *s, int first, const char *const *texts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (bind_text(st, s, first + (int)i, texts[i]) < 0)
			return -1;
	return 0;
}

/* Steps a bound INSERT; returns STORE_OK, STORE_EXISTS or STORE_ERROR, and
 * leaves it reset for the next row. */
static int step_insert(struct store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_DONE)
		return STORE_OK;
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return STORE_EXISTS;
	db_error(st, what);
	return STORE_ERROR;
}

static int tx_begin(struct store *st)
{
	char err[256];
	if (exec_sql(st, "BEGIN IMMEDIATE", err, sizeof err) < 0) {
		log_error(NULL, "store=sqlite op=begin error=\"%s\"", err);
		return -1;
	}
	return 0;
}

static int tx_end(struct store *st, int rc)
{
	char err[256];
	if (rc == STORE_OK && exec_sql(st, "COMMIT", err, sizeof err) == 0)
		return STORE_OK;
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return rc == STORE_OK ? STORE_ERROR : rc;
}

static int sq_verdict_add(struct store *st, const struct store_verdict *v);

static int sq_verdicts_add(struct store *st, const struct store_verdict *v, size_t n)
{
	int rc = STORE_OK;
	if (tx_begin(st) < 0)
		return STORE_ERROR;
	for (size_t i = 0; i < n && rc == STORE_OK; i++)
		rc = sq_verdict_add(st, &v[i]);
	return tx_end(st, rc);
}

static int sq_dmarc_report_add(struct store *st, const struct store_dmarc_report *r)
{
	sqlite3_stmt *rep = NULL, *rec = NULL;
	sqlite3_int64 id;
	int rc = STORE_ERROR;

	if (tx_begin(st) < 0)
		return STORE_ERROR;
	rep = prepare(st,
		      "INSERT INTO dmarc_report(org_name, report_id, email, extra_contact, format, domain, policy, "
		      "begin_time, end_time, received) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
		      "dmarc_report_add");
	rec = prepare(st,
		      "INSERT INTO dmarc_record(report, source_ip, count, disposition, dkim, spf, reason, envelope_to, "
		      "envelope_from, header_from, auth_results) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
		      "dmarc_report_add");
	if (!rep || !rec)
		goto done;
	{
		const char *t[] = { r->org_name, r->report_id, r->email, r->extra_contact, r->format, r->domain, r->policy };
		if (bind_texts(st, rep, 1, t, ARRAY_LEN(t)) < 0)
			goto done;
	}
	sqlite3_bind_int64(rep, 8, r->begin);
	sqlite3_bind_int64(rep, 9, r->end);
	sqlite3_bind_int64(rep, 10, (sqlite3_int64)time(NULL));
	if ((rc = step_insert(st, rep, "dmarc_report_add")) != STORE_OK)
		goto done;
	id = sqlite3_last_insert_rowid(st->db);
	for (size_t i = 0; i < r->nrecords; i++) {
		const struct store_dmarc_record *d = &r->records[i];
		const char *t[] = { d->source_ip, NULL, d->disposition, d->dkim, d->spf, d->reason,
				    d->envelope_to, d->envelope_from, d->header_from, d->auth_results };
		rc = STORE_ERROR;
		sqlite3_bind_int64(rec, 1, id);
		if (bind_texts(st, rec, 2, t, ARRAY_LEN(t)) < 0)
			goto done;
		sqlite3_bind_int64(rec, 3, d->count);
		if ((rc = step_insert(st, rec, "dmarc_report_add")) != STORE_OK)
			goto done;
	}
	rc = STORE_OK;
done:
	sqlite3_finalize(rep);
	sqlite3_finalize(rec);
	return tx_end(st, rc);
}

static const char *col_text(sqlite3_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(s, i);
}

static int sq_dmarc_summary(struct store *st, int64_t since, enum store_dmarc_group by, store_dmarc_row_cb cb,
			    void *arg)
{
	static const char *const sql[] = {
		[STORE_DMARC_BY_REPORTER] =
			"SELECT r.org_name, r.email, NULL, NULL, group_concat(DISTINCT d.header_from), "
			"count(DISTINCT r.id), 1, "
			"coalesce(sum(d.count), 0), "
			"coalesce(sum(CASE WHEN d.dkim = 'pass' THEN d.count END), 0), "
			"coalesce(sum(CASE WHEN d.spf = 'pass' THEN d.count END), 0), "
			"coalesce(sum(CASE WHEN d.dkim = 'pass' OR d.spf = 'pass' THEN d.count END), 0), "
			"coalesce(sum(CASE WHEN d.disposition = 'none' THEN d.count END), 0), "
			"coalesce(sum(CASE WHEN d.disposition = 'quarantine' THEN d.count END), 0), "
			"coalesce(sum(CASE WHEN d.disposition = 'reject' THEN d.count END), 0) "
			"FROM dmarc_report r LEFT JOIN dmarc_record d ON d.report = r.id WHERE r.end_time >= ?1 "
			"GROUP BY r.org_name, r.email ORDER BY 8 DESC, r.org_name, r.email",
		[STORE_DMARC_BY_SOURCE] =
			"SELECT NULL, NULL, d.source_ip, r.domain, group_concat(DISTINCT d.header_from), "
			"count(DISTINCT r.id), count(DISTINCT r.org_name), "
			"coalesce(sum(d.count), 0), "
			"coalesce(sum(CASE WHEN d.dkim = 'pass' THEN d.count END), 0), "
			"coalesce(sum(CASE WHEN d.spf = 'pass' THEN d.count END), 0), "
			"coalesce(sum(CASE WHEN d.dkim = 'pass' OR d.spf = 'pass' THEN d.count END), 0), "
			"coalesce(sum(CASE WHEN d.disposition = 'none' THEN d.count END), 0), "
			"coalesce(sum(CASE WHEN d.disposition = 'quarantine' THEN d.count END), 0), "
			"coalesce(sum(CASE WHEN d.disposition = 'reject' THEN d.count END), 0) "
			"FROM dmarc_report r JOIN dmarc_record d ON d.report = r.id WHERE r.end_time >= ?1 "
			"GROUP BY d.source_ip, r.domain ORDER BY 8 DESC, d.source_ip, r.domain",
	};
	sqlite3_stmt *s = prepare(st, sql[by == STORE_DMARC_BY_SOURCE], "dmarc_summary");
	int rc;

	if (!s)
		return STORE_ERROR;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)since);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_dmarc_row row = {
			.org_name = col_text(s, 0),
			.email = col_text(s, 1),
			.source_ip = col_text(s, 2),
			.domain = col_text(s, 3),
			.header_from = col_text(s, 4),
			.reports = sqlite3_column_int64(s, 5),
			.reporters = sqlite3_column_int64(s, 6),
			.messages = sqlite3_column_int64(s, 7),
			.dkim_pass = sqlite3_column_int64(s, 8),
			.spf_pass = sqlite3_column_int64(s, 9),
			.dmarc_pass = sqlite3_column_int64(s, 10),
			.none = sqlite3_column_int64(s, 11),
			.quarantine = sqlite3_column_int64(s, 12),
			.reject = sqlite3_column_int64(s, 13),
		};
		if (cb(arg, &row)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		db_error(st, "dmarc_summary");
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

static int sq_tls_report_add(struct store *st, const struct store_tls_report *r)
{
	sqlite3_stmt *rep = NULL, *pol = NULL, *fail = NULL;
	sqlite3_int64 id;
	int rc = STORE_ERROR;

	if (tx_begin(st) < 0)
		return STORE_ERROR;
	rep = prepare(st,
		      "INSERT INTO tls_report(org_name, report_id, contact, begin_time, end_time, received) "
		      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
		      "tls_report_add");
	pol = prepare(st,
		      "INSERT INTO tls_policy(report, type, domain, mx_host, policy_string, success, failure) "
		      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
		      "tls_report_add");
	fail = prepare(st,
		       "INSERT INTO tls_failure(policy, result_type, sending_ip, receiving_mx, receiving_ip, "
		       "reason_code, info, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
		       "tls_report_add");
	if (!rep || !pol || !fail)
		goto done;
	{
		const char *t[] = { r->org_name, r->report_id, r->contact };
		if (bind_texts(st, rep, 1, t, ARRAY_LEN(t)) < 0)
			goto done;
	}
	sqlite3_bind_int64(rep, 4, r->begin);
	sqlite3_bind_int64(rep, 5, r->end);
	sqlite3_bind_int64(rep, 6, (sqlite3_int64)time(NULL));
	if ((rc = step_insert(st, rep, "tls_report_add")) != STORE_OK)
		goto done;
	id = sqlite3_last_insert_rowid(st->db);
	for (size_t i = 0; i < r->npolicies; i++) {
		const struct store_tls_policy *p = &r->policies[i];
		const char *t[] = { p->type, p->domain, p->mx_host, p->policy_string };
		sqlite3_int64 pid;
		rc = STORE_ERROR;
		sqlite3_bind_int64(pol, 1, id);
		if (bind_texts(st, pol, 2, t, ARRAY_LEN(t)) < 0)
			goto done;
		sqlite3_bind_int64(pol, 6, p->success);
		sqlite3_bind_int64(pol, 7, p->failure);
		if ((rc = step_insert(st, pol, "tls_report_add")) != STORE_OK)
			goto done;
		pid = sqlite3_last_insert_rowid(st->db);
		for (size_t k = 0; k < p->nfailures; k++) {
			const struct store_tls_failure *f = &p->failures[k];
			const char *ft[] = { f->result_type, f->sending_ip, f->receiving_mx, f->receiving_ip,
					     f->reason_code, f->info };
			rc = STORE_ERROR;
			sqlite3_bind_int64(fail, 1, pid);
			if (bind_texts(st, fail, 2, ft, ARRAY_LEN(ft)) < 0)
				goto done;
			sqlite3_bind_int64(fail, 8, f->count);
			if ((rc = step_insert(st, fail, "tls_report_add")) != STORE_OK)
				goto done;
		}
	}
	rc = STORE_OK;
done:
	sqlite3_finalize(rep);
	sqlite3_finalize(pol);
	sqlite3_finalize(fail);
	return tx_end(st, rc);
}

static int sq_tls_summary(struct store *st, int64_t since, enum store_tls_group by, store_tls_row_cb cb, void *arg)
{
	static const char *const sql[] = {
		[STORE_TLS_BY_POLICY] =
			"SELECT r.org_name, p.domain, p.type, NULL, NULL, NULL, count(DISTINCT r.id), "
			"sum(p.success), sum(p.failure) "
			"FROM tls_report r JOIN tls_policy p ON p.report = r.id WHERE r.end_time >= ?1 "
			"GROUP BY r.org_name, p.domain, p.type ORDER BY r.org_name, p.domain, p.type",
		[STORE_TLS_BY_FAILURE] =
			"SELECT NULL, p.domain, p.type, f.result_type, f.sending_ip, f.receiving_mx, "
			"count(DISTINCT r.id), 0, sum(f.count) "
			"FROM tls_report r JOIN tls_policy p ON p.report = r.id JOIN tls_failure f ON f.policy = p.id "
			"WHERE r.end_time >= ?1 "
			"GROUP BY p.domain, p.type, f.result_type, f.sending_ip, f.receiving_mx "
			"ORDER BY 9 DESC, p.domain, f.result_type, f.sending_ip, f.receiving_mx",
	};
	sqlite3_stmt *s = prepare(st, sql[by == STORE_TLS_BY_FAILURE], "tls_summary");
	int rc;

	if (!s)
		return STORE_ERROR;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)since);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_tls_row row = {
			.org_name = col_text(s, 0),
			.domain = col_text(s, 1),
			.policy_type = col_text(s, 2),
			.result_type = col_text(s, 3),
			.sending_ip = col_text(s, 4),
			.receiving_mx = col_text(s, 5),
			.reports = sqlite3_column_int64(s, 6),
			.success = sqlite3_column_int64(s, 7),
			.failure = sqlite3_column_int64(s, 8),
		};
		if (cb(arg, &row)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		db_error(st, "tls_summary");
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

/* ---- graylisting ---- */

/* Steps a bound statement that returns no rows; returns STORE_OK,
 * STORE_EXISTS or STORE_ERROR, and resets it. */
static int step_done(struct store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		rc = STORE_OK;
	else if ((rc & 0xff) == SQLITE_CONSTRAINT)
		rc = STORE_EXISTS;
	else {
		db_error(st, what);
		rc = STORE_ERROR;
	}
	stmt_done(s);
	return rc;
}

static int bind_int(struct store *st, sqlite3_stmt *s, int idx, int64_t v)
{
	if (sqlite3_bind_int64(s, idx, (sqlite3_int64)v) != SQLITE_OK) {
		db_error(st, "bind");
		return -1;
	}
	return 0;
}


static int sq_grey_get(struct store *st, const char *client, const char *sender, const char *rcpt,
		       struct store_grey *out)
{
	sqlite3_stmt *s = stmt_get(st, ST_GREY_GET);
	int rc;
	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, client) < 0 || bind_text(st, s, 2, sender) < 0 || bind_text(st, s, 3, rcpt) < 0) {
		stmt_done(s);
		return STORE_ERROR;
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->client = client;
		out->sender = sender;
		out->rcpt = rcpt;
		out->first_seen = sqlite3_column_int64(s, 0);
		out->last_seen = sqlite3_column_int64(s, 1);
		out->passed = sqlite3_column_int64(s, 2);
		out->attempts = sqlite3_column_int64(s, 3);
		rc = STORE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = STORE_NOTFOUND;
	} else {
		db_error(st, "grey_get");
		rc = STORE_ERROR;
	}
	stmt_done(s);
	return rc;
}

static int sq_grey_put(struct store *st, const struct store_grey *g)
{
	sqlite3_stmt *s = stmt_get(st, ST_GREY_PUT);
	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, g->client) < 0 || bind_text(st, s, 2, g->sender) < 0 || bind_text(st, s, 3, g->rcpt) < 0 ||
	    bind_int(st, s, 4, g->first_seen) < 0 || bind_int(st, s, 5, g->last_seen) < 0 ||
	    bind_int(st, s, 6, g->passed) < 0 || bind_int(st, s, 7, g->attempts) < 0) {
		stmt_done(s);
		return STORE_ERROR;
	}
	return step_done(st, s, "grey_put");
}

static int sq_grey_list(struct store *st, store_grey_cb cb, void *arg)
{
	sqlite3_stmt *s = stmt_get(st, ST_GREY_LIST);
	int rc;
	if (!s)
		return STORE_ERROR;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_grey g = {
			.client = (const char *)sqlite3_column_text(s, 0),
			.sender = (const char *)sqlite3_column_text(s, 1),
			.rcpt = (const char *)sqlite3_column_text(s, 2),
			.first_seen = sqlite3_column_int64(s, 3),
			.last_seen = sqlite3_column_int64(s, 4),
			.passed = sqlite3_column_int64(s, 5),
			.attempts = sqlite3_column_int64(s, 6),
		};
		if (cb(arg, &g))
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		db_error(st, "grey_list");
		stmt_done(s);
		return STORE_ERROR;
	}
	stmt_done(s);
	return STORE_OK;
}

static int sq_allow_get(struct store *st, const char *key, struct store_allow *out)
{
	sqlite3_stmt *s = stmt_get(st, ST_ALLOW_GET);
	int rc;
	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, key) < 0) {
		stmt_done(s);
		return STORE_ERROR;
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->key = key;
		out->count = sqlite3_column_int64(s, 0);
		out->first_seen = sqlite3_column_int64(s, 1);
		out->last_seen = sqlite3_column_int64(s, 2);
		out->manual = sqlite3_column_int(s, 3);
		rc = STORE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = STORE_NOTFOUND;
	} else {
		db_error(st, "allow_get");
		rc = STORE_ERROR;
	}
	stmt_done(s);
	return rc;
}

static int sq_allow_put(struct store *st, const struct store_allow *a)
{
	sqlite3_stmt *s = stmt_get(st, ST_ALLOW_PUT);
	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, a->key) < 0 || bind_int(st, s, 2, a->count) < 0 || bind_int(st, s, 3, a->first_seen) < 0 ||
	    bind_int(st, s, 4, a->last_seen) < 0 || bind_int(st, s, 5, a->manual) < 0) {
		stmt_done(s);
		return STORE_ERROR;
	}
	return step_done(st, s, "allow_put");
}

static int sq_allow_list(struct store *st, store_allow_cb cb, void *arg)
{
	sqlite3_stmt *s = stmt_get(st, ST_ALLOW_LIST);
	int rc;
	if (!s)
		return STORE_ERROR;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_allow a = {
			.key = (const char *)sqlite3_column_text(s, 0),
			.count = sqlite3_column_int64(s, 1),
			.first_seen = sqlite3_column_int64(s, 2),
			.last_seen = sqlite3_column_int64(s, 3),
			.manual = sqlite3_column_int(s, 4),
		};
		if (cb(arg, &a))
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		db_error(st, "allow_list");
		stmt_done(s);
		return STORE_ERROR;
	}
	stmt_done(s);
	return STORE_OK;
}

/* Runs sql (one statement, parameters ?1.. bound from texts or ints) in a
 * one-off statement; adds the rows changed to *n. */
static int run_once(struct store *st, const char *sql, const char *text, const int64_t *ints, int nints, int64_t *n,
		    const char *what)
{
	sqlite3_stmt *s;
	int rc;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		db_error(st, what);
		return STORE_ERROR;
	}
	if (text && sqlite3_bind_text(s, 1, text, -1, SQLITE_TRANSIENT) != SQLITE_OK)
		goto fail;
	for (int i = 0; i < nints; i++)
		if (sqlite3_bind_int64(s, i + 1, (sqlite3_int64)ints[i]) != SQLITE_OK)
			goto fail;
	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE)
		goto fail;
	*n += sqlite3_changes(st->db);
	sqlite3_finalize(s);
	return STORE_OK;
fail:
	db_error(st, what);
	sqlite3_finalize(s);
	return STORE_ERROR;
}

static int sq_grey_forget(struct store *st, const char *key, int64_t *n)
{
	if (!key) {
		if (run_once(st, "DELETE FROM greylist", NULL, NULL, 0, n, "grey_forget") != STORE_OK)
			return STORE_ERROR;
		return run_once(st, "DELETE FROM greylist_allow", NULL, NULL, 0, n, "grey_forget");
	}
	if (run_once(st, "DELETE FROM greylist WHERE client = ?1 OR sender = ?1 OR rcpt = ?1", key, NULL, 0, n,
		     "grey_forget") != STORE_OK)
		return STORE_ERROR;
	return run_once(st, "DELETE FROM greylist_allow WHERE key = ?1", key, NULL, 0, n, "grey_forget");
}

static int sq_grey_expire(struct store *st, int64_t unpassed_before, int64_t passed_before, int64_t allow_before,
			  int64_t *n)
{
	int64_t a[2] = { unpassed_before, passed_before };
	if (run_once(st, "DELETE FROM greylist WHERE (passed = 0 AND first_seen < ?1) OR (passed <> 0 AND last_seen < ?2)",
		     NULL, a, 2, n, "grey_expire") != STORE_OK)
		return STORE_ERROR;
	return run_once(st, "DELETE FROM greylist_allow WHERE manual = 0 AND last_seen < ?1", NULL, &allow_before, 1, n,
			"grey_expire");
}

/* ---- the outbound queue ---- */


static int sq_queue_add(struct store *st, const struct store_qmsg *m, const char *const *rcpts, size_t n)
{
	sqlite3_stmt *s = stmt_get(st, ST_QMSG_ADD), *r = stmt_get(st, ST_QRCPT_ADD);
	int rc;

	if (!s || !r)
		return STORE_ERROR;
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		db_error(st, "queue_add");
		return STORE_ERROR;
	}
	if (bind_text(st, s, 1, m->qid) < 0 || bind_text(st, s, 2, m->mail_from) < 0 ||
	    sqlite3_bind_int64(s, 3, m->queued) != SQLITE_OK || sqlite3_bind_int64(s, 4, m->size) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 5, m->body_offset) != SQLITE_OK || bind_text(st, s, 6, m->envid) < 0 ||
	    sqlite3_bind_int(s, 7, m->ret_full) != SQLITE_OK || sqlite3_bind_int(s, 8, m->body_8bit) != SQLITE_OK ||
	    sqlite3_bind_int(s, 9, m->smtputf8) != SQLITE_OK || bind_text(st, s, 10, m->origin) < 0) {
		stmt_done(s);
		rc = STORE_ERROR;
		goto out;
	}
	rc = step_done(st, s, "queue_add");
	for (size_t i = 0; rc == STORE_OK && i < n; i++) {
		if (bind_text(st, r, 1, m->qid) < 0 || bind_text(st, r, 2, rcpts[i]) < 0 ||
		    sqlite3_bind_int64(r, 3, m->queued) != SQLITE_OK) {
			stmt_done(r);
			rc = STORE_ERROR;
			break;
		}
		rc = step_done(st, r, "queue_add");
	}
out:
	if (sqlite3_exec(st->db, rc == STORE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK &&
	    rc == STORE_OK) {
		db_error(st, "queue_add");
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		rc = STORE_ERROR;
	}
	return rc;
}

#define COL_TEXT(s, i) ((const char *)sqlite3_column_text((s), (i)))

static int visit_rcpts(struct store *st, const char *qid, store_qrcpt_cb cb, void *arg)
{
	sqlite3_stmt *s = stmt_get(st, ST_QRCPT_OF);
	int rc;
	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, qid) < 0) {
		stmt_done(s);
		return STORE_ERROR;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_qrcpt r = {
			.qid = COL_TEXT(s, 0),
			.rcpt = COL_TEXT(s, 1),
			.state = COL_TEXT(s, 2),
			.attempts = sqlite3_column_int(s, 3),
			.next_attempt = sqlite3_column_int64(s, 4),
			.last_attempt = sqlite3_column_int64(s, 5),
			.last_status = COL_TEXT(s, 6),
			.last_reply = COL_TEXT(s, 7),
			.last_mx = COL_TEXT(s, 8),
		};
		if (cb && cb(arg, &r)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		db_error(st, "queue_visit");
	stmt_done(s);
	return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

static int sq_queue_visit(struct store *st, const char *qid, store_qmsg_cb msg_cb, store_qrcpt_cb rcpt_cb, void *arg)
{
	sqlite3_stmt *s = stmt_get(st, qid ? ST_QMSG_ONE : ST_QMSG_ALL);
	int rc, found = 0, stop = 0;

	if (!s)
		return STORE_ERROR;
	if (qid && bind_text(st, s, 1, qid) < 0) {
		stmt_done(s);
		return STORE_ERROR;
	}
	while (!stop && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_qmsg m = {
			.qid = COL_TEXT(s, 0),
			.mail_from = COL_TEXT(s, 1),
			.queued = sqlite3_column_int64(s, 2),
			.size = sqlite3_column_int64(s, 3),
			.body_offset = sqlite3_column_int64(s, 4),
			.envid = COL_TEXT(s, 5),
			.ret_full = sqlite3_column_int(s, 6),
			.body_8bit = sqlite3_column_int(s, 7),
			.smtputf8 = sqlite3_column_int(s, 8),
			.origin = COL_TEXT(s, 9),
			.delay_notified = sqlite3_column_int(s, 10),
		};
		found = 1;
		if (!m.qid || !m.mail_from)
			continue;
		if (msg_cb && msg_cb(arg, &m)) {
			stop = 1;
			break;
		}
		if (rcpt_cb && visit_rcpts(st, m.qid, rcpt_cb, arg) != STORE_OK) {
			stmt_done(s);
			return STORE_ERROR;
		}
	}
	if (!stop && rc != SQLITE_DONE) {
		db_error(st, "queue_visit");
		stmt_done(s);
		return STORE_ERROR;
	}
	stmt_done(s);
	return qid && !found ? STORE_NOTFOUND : STORE_OK;
}

static int sq_queue_due(struct store *st, int64_t now, size_t max, store_qid_cb cb, void *arg)
{
	sqlite3_stmt *s = stmt_get(st, ST_QUEUE_DUE);
	int rc;
	char **ids = NULL;
	size_t n = 0;

	if (!s)
		return STORE_ERROR;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
	/* Collected first, so that the callback may use the store. */
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *q = COL_TEXT(s, 0);
		if (!q)
			continue;
		ids = xrealloc(ids, (n + 1) * sizeof *ids);
		ids[n++] = xstrdup(q);
	}
	if (rc != SQLITE_DONE)
		db_error(st, "queue_due");
	stmt_done(s);
	for (size_t i = 0; i < n; i++) {
		if (rc == SQLITE_DONE && cb(arg, ids[i]))
			rc = SQLITE_OK;
		free(ids[i]);
	}
	free(ids);
	return rc == SQLITE_DONE || rc == SQLITE_OK ? STORE_OK : STORE_ERROR;
}

static int sq_queue_rcpt_update(struct store *st, const struct store_qrcpt *r)
{
	sqlite3_stmt *s = stmt_get(st, ST_QRCPT_UPDATE);
	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, r->qid) < 0 || bind_text(st, s, 2, r->rcpt) < 0 || bind_text(st, s, 3, r->state) < 0 ||
	    sqlite3_bind_int(s, 4, r->attempts) != SQLITE_OK || sqlite3_bind_int64(s, 5, r->next_attempt) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 6, r->last_attempt) != SQLITE_OK || bind_text(st, s, 7, r->last_status) < 0 ||
	    bind_text(st, s, 8, r->last_reply) < 0 || bind_text(st, s, 9, r->last_mx) < 0) {
		stmt_done(s);
		return STORE_ERROR;
	}
	return step_done(st, s, "queue_rcpt_update");
}

static int sq_queue_set_state(struct store *st, const char *qid, const char *from, const char *to, int64_t next_attempt,
			      int *changed)
{
	sqlite3_stmt *s = stmt_get(st, from ? ST_QRCPT_SET : ST_QRCPT_SET_ANY);
	int rc;
	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, qid) < 0 || bind_text(st, s, 2, from) < 0 || bind_text(st, s, 3, to) < 0 ||
	    sqlite3_bind_int64(s, 4, next_attempt) != SQLITE_OK) {
		stmt_done(s);
		return STORE_ERROR;
	}
	rc = step_done(st, s, "queue_set_state");
	if (changed)
		*changed = rc == STORE_OK ? sqlite3_changes(st->db) : 0;
	return rc;
}

static int exec_qid(struct store *st, enum stmt_id id, const char *qid, const char *what)
{
	sqlite3_stmt *s = stmt_get(st, id);
	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, qid) < 0) {
		stmt_done(s);
		return STORE_ERROR;
	}
	return step_done(st, s, what);
}

static int sq_queue_set_notified(struct store *st, const char *qid)
{
	return exec_qid(st, ST_QMSG_NOTIFIED, qid, "queue_set_notified");
}

static int sq_queue_del(struct store *st, const char *qid)
{
	int rc;
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		db_error(st, "queue_del");
		return STORE_ERROR;
	}
	rc = exec_qid(st, ST_QRCPT_DEL, qid, "queue_del");
	if (rc == STORE_OK)
		rc = exec_qid(st, ST_QMSG_DEL, qid, "queue_del");
	if (sqlite3_exec(st->db, rc == STORE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK &&
	    rc == STORE_OK) {
		db_error(st, "queue_del");
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		rc = STORE_ERROR;
	}
	return rc;
}

static int sq_queue_unfinished(struct store *st, const char *qid, int *count)
{
	sqlite3_stmt *s = stmt_get(st, ST_QRCPT_UNFINISHED);
	int rc;
	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, qid) < 0) {
		stmt_done(s);
		return STORE_ERROR;
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*count = sqlite3_column_int(s, 0);
		rc = STORE_OK;
	} else {
		db_error(st, "queue_unfinished");
		rc = STORE_ERROR;
	}
	stmt_done(s);
	return rc;
}

static int sq_ledger_add(struct store *st, const struct store_delivery *d)
{
	sqlite3_stmt *s = stmt_get(st, ST_LEDGER_ADD);
	const char *text[] = { d->qid, d->rcpt, d->domain, d->provider, d->route, d->route_reason, d->mx, d->ip,
			       d->outcome };
	if (!s)
		return STORE_ERROR;
	if (sqlite3_bind_int64(s, 1, d->time) != SQLITE_OK) {
		stmt_done(s);
		return STORE_ERROR;
	}
	for (size_t i = 0; i < ARRAY_LEN(text); i++)
		if (bind_text(st, s, (int)i + 2, text[i]) < 0) {
			stmt_done(s);
			return STORE_ERROR;
		}
	if (sqlite3_bind_int(s, 11, d->code) != SQLITE_OK || bind_text(st, s, 12, d->status) < 0 ||
	    bind_text(st, s, 13, d->reply) < 0 || bind_text(st, s, 14, d->tls_version) < 0 ||
	    bind_text(st, s, 15, d->tls_cipher) < 0 || sqlite3_bind_int(s, 16, d->tls_verified) != SQLITE_OK ||
	    bind_text(st, s, 17, d->tls_policy) < 0 || sqlite3_bind_int(s, 18, d->tls_policy_ok) != SQLITE_OK ||
	    bind_text(st, s, 19, d->tls_failure) < 0) {
		stmt_done(s);
		return STORE_ERROR;
	}
	return step_done(st, s, "ledger_add");
}

static int sq_ledger_list(struct store *st, int64_t since, store_delivery_cb cb, void *arg)
{
	sqlite3_stmt *s = stmt_get(st, ST_LEDGER_LIST);
	int rc;
	if (!s)
		return STORE_ERROR;
	sqlite3_bind_int64(s, 1, since);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_delivery d = {
			.time = sqlite3_column_int64(s, 0),
			.qid = COL_TEXT(s, 1),
			.rcpt = COL_TEXT(s, 2),
			.domain = COL_TEXT(s, 3),
			.provider = COL_TEXT(s, 4),
			.route = COL_TEXT(s, 5),
			.route_reason = COL_TEXT(s, 6),
			.mx = COL_TEXT(s, 7),
			.ip = COL_TEXT(s, 8),
			.outcome = COL_TEXT(s, 9),
			.code = sqlite3_column_int(s, 10),
			.status = COL_TEXT(s, 11),
			.reply = COL_TEXT(s, 12),
			.tls_version = COL_TEXT(s, 13),
			.tls_cipher = COL_TEXT(s, 14),
			.tls_verified = sqlite3_column_int(s, 15),
			.tls_policy = COL_TEXT(s, 16),
			.tls_policy_ok = sqlite3_column_int(s, 17),
			.tls_failure = COL_TEXT(s, 18),
		};
		if (cb(arg, &d)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		db_error(st, "ledger_list");
	stmt_done(s);
	return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

static int sq_mtasts_get(struct store *st, const char *domain, struct store_mtasts *out)
{
	sqlite3_stmt *s = stmt_get(st, ST_MTASTS_GET);
	int rc;
	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, domain) < 0) {
		stmt_done(s);
		return STORE_ERROR;
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->domain = xstrdup(domain);
		out->id = xstrdup(COL_TEXT(s, 0) ? COL_TEXT(s, 0) : "");
		out->policy = xstrdup(COL_TEXT(s, 1) ? COL_TEXT(s, 1) : "");
		out->fetched = sqlite3_column_int64(s, 2);
		out->expires = sqlite3_column_int64(s, 3);
		rc = STORE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = STORE_NOTFOUND;
	} else {
		db_error(st, "mtasts_get");
		rc = STORE_ERROR;
	}
	stmt_done(s);
	return rc;
}

static int sq_mtasts_put(struct store *st, const struct store_mtasts *m)
{
	sqlite3_stmt *s = stmt_get(st, ST_MTASTS_PUT);
	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, m->domain) < 0 || bind_text(st, s, 2, m->id) < 0 || bind_text(st, s, 3, m->policy) < 0 ||
	    sqlite3_bind_int64(s, 4, m->fetched) != SQLITE_OK || sqlite3_bind_int64(s, 5, m->expires) != SQLITE_OK) {
		stmt_done(s);
		return STORE_ERROR;
	}
	return step_done(st, s, "mtasts_put");
}

/* ---- aggregates (deliverability, dashboard) ---- */

/* Steps s (bound) calling row(s, arg) per row until it returns non-zero;
 * finalizes s. */
static int agg_run(struct store *st, sqlite3_stmt *s, int (*row)(sqlite3_stmt *, void *, void *), void *cb, void *arg,
		   const char *what)
{
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (row(s, cb, arg)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		db_error(st, what);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

/* Calls a visitor through a data pointer (ISO C has no function-pointer
 * to void * conversion). */
struct agg_fn {
	union {
		store_ledger_day_cb day;
		store_ledger_reason_cb reason;
		store_delivery_cb delivery;
		store_dmarc_day_cb dmarc;
		store_tls_day_cb tls;
		store_queue_domain_cb qdomain;
	} u;
};

static int row_ledger_day(sqlite3_stmt *s, void *cb, void *arg)
{
	struct store_ledger_day d = {
		.provider = COL_TEXT(s, 0),
		.day = sqlite3_column_int64(s, 1),
		.outcome = COL_TEXT(s, 2),
		.count = sqlite3_column_int64(s, 3),
		.routes = COL_TEXT(s, 4),
	};
	return ((struct agg_fn *)cb)->u.day(arg, &d);
}

static int sq_ledger_daily(struct store *st, int64_t since, store_ledger_day_cb cb, void *arg)
{
	sqlite3_stmt *s = prepare(st,
				  "SELECT provider, time / 86400000 * 86400, outcome, count(*), group_concat(DISTINCT route) "
				  "FROM delivery_ledger WHERE time >= ?1 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
				  "ledger_daily");
	struct agg_fn f = { .u.day = cb };
	if (!s)
		return STORE_ERROR;
	sqlite3_bind_int64(s, 1, since);
	return agg_run(st, s, row_ledger_day, &f, arg, "ledger_daily");
}

static int row_ledger_reason(sqlite3_stmt *s, void *cb, void *arg)
{
	struct store_ledger_reason r = {
		.provider = COL_TEXT(s, 0),
		.outcome = COL_TEXT(s, 1),
		.status = COL_TEXT(s, 2),
		.code = sqlite3_column_int(s, 3),
		.count = sqlite3_column_int64(s, 4),
		.reply = COL_TEXT(s, 5),
	};
	return ((struct agg_fn *)cb)->u.reason(arg, &r);
}

static int sq_ledger_reasons(struct store *st, int64_t since, size_t max, store_ledger_reason_cb cb, void *arg)
{
	sqlite3_stmt *s = prepare(st,
				  "SELECT provider, outcome, status, code, count(*), max(reply) FROM delivery_ledger "
				  "WHERE time >= ?1 AND outcome <> 'delivered' GROUP BY 1, 2, 3, 4 "
				  "ORDER BY 5 DESC, 1, 2, 3, 4 LIMIT ?2",
				  "ledger_reasons");
	struct agg_fn f = { .u.reason = cb };
	if (!s)
		return STORE_ERROR;
	sqlite3_bind_int64(s, 1, since);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)(max > INT32_MAX ? INT32_MAX : max));
	return agg_run(st, s, row_ledger_reason, &f, arg, "ledger_reasons");
}

static int row_ledger_recent(sqlite3_stmt *s, void *cb, void *arg)
{
	struct store_delivery d = {
		.time = sqlite3_column_int64(s, 0),
		.provider = COL_TEXT(s, 1),
		.outcome = COL_TEXT(s, 2),
		.code = sqlite3_column_int(s, 3),
		.status = COL_TEXT(s, 4),
		.reply = COL_TEXT(s, 5),
	};
	return ((struct agg_fn *)cb)->u.delivery(arg, &d);
}

static int sq_ledger_recent(struct store *st, const char *provider, int64_t since, size_t max, store_delivery_cb cb,
			    void *arg)
{
	sqlite3_stmt *s = prepare(st,
				  "SELECT time, provider, outcome, code, status, reply FROM delivery_ledger "
				  "WHERE provider = ?1 AND time >= ?2 ORDER BY time DESC, id DESC LIMIT ?3",
				  "ledger_recent");
	struct agg_fn f = { .u.delivery = cb };
	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, provider) < 0) {
		sqlite3_finalize(s);
		return STORE_ERROR;
	}
	sqlite3_bind_int64(s, 2, since);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)(max > INT32_MAX ? INT32_MAX : max));
	return agg_run(st, s, row_ledger_recent, &f, arg, "ledger_recent");
}

static int row_dmarc_day(sqlite3_stmt *s, void *cb, void *arg)
{
	struct store_dmarc_day d = {
		.org_name = COL_TEXT(s, 0),
		.email = COL_TEXT(s, 1),
		.begin = sqlite3_column_int64(s, 2),
		.end = sqlite3_column_int64(s, 3),
		.header_from = COL_TEXT(s, 4),
		.messages = sqlite3_column_int64(s, 5),
		.dmarc_pass = sqlite3_column_int64(s, 6),
	};
	return ((struct agg_fn *)cb)->u.dmarc(arg, &d);
}

static int sq_dmarc_daily(struct store *st, int64_t since, size_t max, store_dmarc_day_cb cb, void *arg)
{
	sqlite3_stmt *s = prepare(st,
				  "SELECT r.org_name, r.email, r.begin_time, r.end_time, lower(d.header_from), "
				  "coalesce(sum(d.count), 0), "
				  "coalesce(sum(CASE WHEN d.dkim = 'pass' OR d.spf = 'pass' THEN d.count END), 0) "
				  "FROM dmarc_report r JOIN dmarc_record d ON d.report = r.id WHERE r.end_time >= ?1 "
				  "GROUP BY r.id, lower(d.header_from) ORDER BY r.begin_time, r.id LIMIT ?2",
				  "dmarc_daily");
	struct agg_fn f = { .u.dmarc = cb };
	if (!s)
		return STORE_ERROR;
	sqlite3_bind_int64(s, 1, since);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)(max > INT32_MAX ? INT32_MAX : max));
	return agg_run(st, s, row_dmarc_day, &f, arg, "dmarc_daily");
}

static int row_tls_day(sqlite3_stmt *s, void *cb, void *arg)
{
	struct store_tls_day d = {
		.day = sqlite3_column_int64(s, 0),
		.reports = sqlite3_column_int64(s, 1),
		.success = sqlite3_column_int64(s, 2),
		.failure = sqlite3_column_int64(s, 3),
	};
	return ((struct agg_fn *)cb)->u.tls(arg, &d);
}

static int sq_tls_daily(struct store *st, int64_t since, store_tls_day_cb cb, void *arg)
{
	sqlite3_stmt *s = prepare(st,
				  "SELECT r.begin_time / 86400 * 86400, count(DISTINCT r.id), coalesce(sum(p.success), 0), "
				  "coalesce(sum(p.failure), 0) FROM tls_report r LEFT JOIN tls_policy p ON p.report = r.id "
				  "WHERE r.end_time >= ?1 GROUP BY 1 ORDER BY 1 LIMIT 1000",
				  "tls_daily");
	struct agg_fn f = { .u.tls = cb };
	if (!s)
		return STORE_ERROR;
	sqlite3_bind_int64(s, 1, since);
	return agg_run(st, s, row_tls_day, &f, arg, "tls_daily");
}

/* Runs a one-row query of integer columns into out[0..n). */
static int one_row(struct store *st, const char *sql, int64_t *out, int n, const char *what)
{
	sqlite3_stmt *s = prepare(st, sql, what);
	int rc;
	if (!s)
		return STORE_ERROR;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		for (int i = 0; i < n; i++)
			out[i] = sqlite3_column_int64(s, i);
	else
		db_error(st, what);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? STORE_OK : STORE_ERROR;
}

static int sq_queue_counts(struct store *st, struct store_queue_counts *out)
{
	int64_t v[6] = { 0 };
	int rc = one_row(st,
			 "SELECT (SELECT count(*) FROM queue_msg), "
			 "coalesce(sum(state = 'pending'), 0), coalesce(sum(state = 'held'), 0), "
			 "coalesce(sum(state = 'failed'), 0), coalesce(sum(state = 'delivered'), 0), "
			 "coalesce(sum(state = 'bounced'), 0) FROM queue_rcpt",
			 v, 6, "queue_counts");
	*out = (struct store_queue_counts){ v[0], v[1], v[2], v[3], v[4], v[5] };
	return rc;
}

static int row_queue_domain(sqlite3_stmt *s, void *cb, void *arg)
{
	struct store_queue_domain d = {
		.state = COL_TEXT(s, 0),
		.domain = COL_TEXT(s, 1),
		.rcpts = sqlite3_column_int64(s, 2),
		.oldest = sqlite3_column_int64(s, 3),
		.max_attempts = sqlite3_column_int64(s, 4),
		.last_reply = COL_TEXT(s, 5),
	};
	return ((struct agg_fn *)cb)->u.qdomain(arg, &d);
}

static int sq_queue_domains(struct store *st, size_t max, store_queue_domain_cb cb, void *arg)
{
	sqlite3_stmt *s = prepare(st,
				  "SELECT r.state, lower(substr(r.rcpt, instr(r.rcpt, '@') + 1)), count(*), "
				  "min(m.queued), max(r.attempts), max(r.last_reply) "
				  "FROM queue_rcpt r JOIN queue_msg m ON m.qid = r.qid "
				  "WHERE r.state IN ('pending', 'held', 'failed') GROUP BY 1, 2 "
				  "ORDER BY 3 DESC, 1, 2 LIMIT ?1",
				  "queue_domains");
	struct agg_fn f = { .u.qdomain = cb };
	if (!s)
		return STORE_ERROR;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)(max > INT32_MAX ? INT32_MAX : max));
	return agg_run(st, s, row_queue_domain, &f, arg, "queue_domains");
}

static int sq_grey_stats(struct store *st, struct store_grey_stats *out)
{
	int64_t v[4] = { 0 };
	int rc = one_row(st,
			 "SELECT (SELECT count(*) FROM greylist), (SELECT count(*) FROM greylist WHERE passed > 0), "
			 "(SELECT count(*) FROM greylist_allow WHERE manual = 0), "
			 "(SELECT count(*) FROM greylist_allow WHERE manual <> 0)",
			 v, 4, "grey_stats");
	*out = (struct store_grey_stats){ v[0], v[1], v[2], v[3] };
	return rc;
}

static int sq_route_put(struct store *st, const struct store_route *r)
{
	sqlite3_stmt *s = stmt_get(st, ST_ROUTE_PUT);
	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, r->key) < 0 || bind_text(st, s, 2, r->provider) < 0 || bind_text(st, s, 3, r->domain) < 0 ||
	    sqlite3_bind_int64(s, 4, r->until) != SQLITE_OK || sqlite3_bind_int64(s, 5, r->learned) != SQLITE_OK ||
	    bind_text(st, s, 6, r->reason) < 0 || sqlite3_bind_int(s, 7, r->relay) != SQLITE_OK) {
		stmt_done(s);
		return STORE_ERROR;
	}
	return step_done(st, s, "route_put");
}

static int sq_route_list(struct store *st, const char *key, store_route_cb cb, void *arg)
{
	sqlite3_stmt *s = stmt_get(st, key ? ST_ROUTE_ONE : ST_ROUTE_ALL);
	int rc;
	if (!s)
		return STORE_ERROR;
	if (key && bind_text(st, s, 1, key) < 0) {
		stmt_done(s);
		return STORE_ERROR;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_route r = {
			.key = COL_TEXT(s, 0),
			.provider = COL_TEXT(s, 1),
			.domain = COL_TEXT(s, 2),
			.until = sqlite3_column_int64(s, 3),
			.learned = sqlite3_column_int64(s, 4),
			.reason = COL_TEXT(s, 5),
			.relay = sqlite3_column_int(s, 6),
		};
		if (cb(arg, &r)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		db_error(st, "route_list");
	stmt_done(s);
	return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

static int sq_route_forget(struct store *st, const char *key, int *n)
{
	sqlite3_stmt *s = stmt_get(st, ST_ROUTE_DEL);
	int rc;
	if (!s)
		return STORE_ERROR;
	if (bind_text(st, s, 1, key) < 0) {
		stmt_done(s);
		return STORE_ERROR;
	}
	rc = step_done(st, s, "route_forget");
	*n = rc == STORE_OK ? sqlite3_changes(st->db) : 0;
	return rc;
}

static void sq_close(struct store *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	if (st->db && sqlite3_close(st->db) != SQLITE_OK)
		log_error(NULL, "store=sqlite path=%s op=close error=\"statements still open\"", st->path);
	free(st->path);
	free(st);
}

static const struct store_ops sqlite_ops = {
	.name = "sqlite",
	.user_add = sq_user_add,
	.user_del = sq_user_del,
	.user_set_password = sq_user_set_password,
	.user_get_password = sq_user_get_password,
	.user_exists = sq_user_exists,
	.user_list = sq_user_list,
	.alias_add = sq_alias_add,
	.alias_del = sq_alias_del,
	.alias_targets = sq_alias_targets,
	.alias_list = sq_alias_list,
	.verdict_add = sq_verdict_add,
	.verdicts_add = sq_verdicts_add,
	.verdict_list = sq_verdict_list,
	.dmarc_report_add = sq_dmarc_report_add,
	.dmarc_summary = sq_dmarc_summary,
	.tls_report_add = sq_tls_report_add,
	.tls_summary = sq_tls_summary,
	.grey_get = sq_grey_get,
	.grey_put = sq_grey_put,
	.grey_list = sq_grey_list,
	.allow_get = sq_allow_get,
	.allow_put = sq_allow_put,
	.allow_list = sq_allow_list,
	.grey_forget = sq_grey_forget,
	.grey_expire = sq_grey_expire,
	.queue_add = sq_queue_add,
	.queue_visit = sq_queue_visit,
	.queue_due = sq_queue_due,
	.queue_rcpt_update = sq_queue_rcpt_update,
	.queue_set_state = sq_queue_set_state,
	.queue_set_notified = sq_queue_set_notified,
	.queue_del = sq_queue_del,
	.queue_unfinished = sq_queue_unfinished,
	.ledger_add = sq_ledger_add,
	.ledger_list = sq_ledger_list,
	.mtasts_get = sq_mtasts_get,
	.mtasts_put = sq_mtasts_put,
	.ledger_daily = sq_ledger_daily,
	.ledger_reasons = sq_ledger_reasons,
	.ledger_recent = sq_ledger_recent,
	.dmarc_daily = sq_dmarc_daily,
	.tls_daily = sq_tls_daily,
	.queue_counts = sq_queue_counts,
	.queue_domains = sq_queue_domains,
	.grey_stats = sq_grey_stats,
	.route_put = sq_route_put,
	.route_list = sq_route_list,
	.route_forget = sq_route_forget,
	.close = sq_close,
};

/* Runs one SQL string that returns no rows we need. */
static int exec_sql(struct store *st, const char *sql, char *err, size_t errsize)
{
	char *msg = NULL;
	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errsize, "%s: %s", st->path, msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* Reads the schema version (0 for a new database). */
static int schema_version(struct store *st, int *version, char *err, size_t errsize)
{
	sqlite3_stmt *s;
	int rc;

	*version = 0;
	if (sqlite3_prepare_v2(st->db, "SELECT max(version) FROM schema_version", -1, &s, NULL) != SQLITE_OK) {
		snprintf(err, errsize, "%s: %s", st->path, sqlite3_errmsg(st->db));
		return -1;
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*version = sqlite3_column_int(s, 0);
	else if (rc != SQLITE_DONE)
		snprintf(err, errsize, "%s: %s", st->path, sqlite3_errmsg(st->db));
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* Brings the schema up to SCHEMA_VERSION, one transaction per step. */
static int migrate(struct store *st, char *err, size_t errsize)
{
	int version, fresh = -1;

	if (exec_sql(st, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", err, errsize) < 0)
		return -1;
	for (;;) {
		char sql[128];
		if (exec_sql(st, "BEGIN IMMEDIATE", err, errsize) < 0)
			return -1;
		if (schema_version(st, &version, err, errsize) < 0)
			goto fail;
		if (fresh < 0)
			fresh = version == 0; /* a new database: nothing to announce */
		if (version < 0 || version > SCHEMA_VERSION) {
			snprintf(err, errsize,
				 "%s has schema version %d, but this postern knows only up to %d; "
				 "upgrade postern, or restore the database it made",
				 st->path, version, SCHEMA_VERSION);
			goto fail;
		}
		if (version == SCHEMA_VERSION)
			return exec_sql(st, "COMMIT", err, errsize);
		if (exec_sql(st, migrations[version], err, errsize) < 0)
			goto fail;
		snprintf(sql, sizeof sql, "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%d)",
			 version + 1);
		if (exec_sql(st, sql, err, errsize) < 0 || exec_sql(st, "COMMIT", err, errsize) < 0)
			goto fail;
		if (!fresh)
			log_info(NULL, "store=sqlite path=%s schema_version=%d migrated=yes", st->path, version + 1);
	}
fail:
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

struct store *store_sqlite_open(const char *data_dir, char *err, size_t errsize)
{
	struct store *st;
	sqlite3_stmt *s;
	int fd, wal = 0;

	if (mkdir_p(data_dir, 0750) < 0) {
		snprintf(err, errsize, "cannot create %s: %s; create it, owned by the postern user", data_dir,
			 strerror(errno));
		return NULL;
	}
	st = xcalloc(1, sizeof *st);
	st->ops = &sqlite_ops;
	st->path = xasprintf("%s/state.db", data_dir);

	/* Create it 0600 ourselves: it holds password hashes, whatever the umask. */
	fd = open(st->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errsize, "cannot open %s: %s; check that the postern user owns %s", st->path,
			 strerror(errno), data_dir);
		goto fail;
	}
	close(fd);

	if (sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		snprintf(err, errsize, "cannot open %s: %s", st->path,
			 st->db ? sqlite3_errmsg(st->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(st->db, 5000);
	sqlite3_extended_result_codes(st->db, 1);

	/* journal_mode answers with the mode in force; anything else than wal
	 * (e.g. a file system without shared memory) is an error worth seeing. */
	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW) {
			const char *mode = (const char *)sqlite3_column_text(s, 0);
			wal = mode && !strcmp(mode, "wal");
		}
		sqlite3_finalize(s);
	}
	if (!wal) {
		snprintf(err, errsize, "%s: cannot switch to WAL mode: %s", st->path, sqlite3_errmsg(st->db));
		goto fail;
	}
	/* WAL with synchronous=NORMAL: a commit does not fsync (the daemon
	 * writes a verdict per message on its event loop), and the database
	 * can never be corrupted; a power cut may lose the last commits. Mail
	 * itself never lives here. */
	if (exec_sql(st, "PRAGMA synchronous = NORMAL", err, errsize) < 0)
		goto fail;
	if (migrate(st, err, errsize) < 0)
		goto fail;
	return st;
fail:
	sq_close(st);
	return NULL;
}

/*
 * client: see client.h. The life of one connection:
 *
 *   CONNECT -> [TLS_IMPLICIT] -> GREETING -> EHLO (or HELO) -> [STARTTLS ->
 *   TLS -> EHLO] -> [AUTH] -> READY -> TXN (MAIL, RCPT..., DATA) -> BODY ->
 *   DOT -> READY -> ... -> QUIT
 *
 * Replies are matched to commands in the order sent (RFC 2920 section 3.1),
 * which is what makes pipelining work: with PIPELINING, MAIL, every RCPT and
 * DATA leave in one write and their replies are read as they come; without
 * it, each command waits for the previous reply. The message body is read
 * from the queue file in 64 KiB blocks as the socket drains (the output
 * buffer never holds more than about BODY_HIGH bytes).
 *
 * Failure handling: any local failure (connect, TLS, timeout, a malformed
 * or overlong reply, lost connection) ends the connection; the request in
 * progress gets a result with code 0, which is always temporary.
 */
#include "smtp/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "lib/log.h"
#include "lib/util.h"

#define BODY_BLOCK 65536
#define BODY_HIGH (256 * 1024)
#define QUIT_WAIT_MS 2000

enum cstate {
	C_CONNECT,
	C_TLS_IMPLICIT,
	C_GREETING,
	C_EHLO,
	C_HELO,
	C_STARTTLS,
	C_TLS,
	C_AUTH,
	C_READY,
	C_TXN,
	C_BODY,
	C_DOT,
	C_QUIT,
	C_DEAD,
};

struct smtpc {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *timer;
	struct event *defer;
	enum cstate state;
	struct smtpc_opts o;
	char *helo, *tls_name, *auth_user, *auth_pass, *log_id;
	struct smtp_reply reply; /* being read */
	const struct smtp_reply *cur; /* complete, being handled */
	struct smtpc_info info;
	struct smtpc_result fail; /* a failure reported from the defer event */
	int ehlo_after_tls;
	int auth_step;

	smtpc_open_cb open_cb;
	void *open_arg;

	struct smtpc_txn txn;
	smtpc_txn_cb txn_cb;
	void *txn_arg;
	struct smtpc_txn_result res;
	size_t ncmds, sent, answered, accepted;
	off_t body_done;
	struct smtp_dot dot;
	char *block, *enc;
};

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static void arm(struct smtpc *c, uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
	evtimer_add(c->timer, &tv);
}

static void result_set(struct smtpc_result *r, int code, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void result_set(struct smtpc_result *r, int code, const char *status, const char *fmt, ...)
{
	va_list ap;
	r->code = code;
	str_copy(r->status, status ? status : "", sizeof r->status);
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof r->text, fmt, ap);
	va_end(ap);
}

static void result_reply(struct smtpc_result *r, const struct smtp_reply *rep)
{
	r->code = rep->code;
	str_copy(r->status, rep->status, sizeof r->status);
	smtp_reply_oneline(rep, r->text, sizeof r->text);
}

static void send_line(struct smtpc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void send_line(struct smtpc *c, const char *fmt, ...)
{
	va_list ap;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* The end of a transaction: hand the results over. c may be gone after. */
static void txn_finish(struct smtpc *c, int reusable)
{
	smtpc_txn_cb cb = c->txn_cb;
	c->txn_cb = NULL;
	c->res.reusable = reusable && c->state != C_DEAD;
	if (c->state != C_DEAD)
		c->state = reusable ? C_READY : C_DEAD;
	if (c->state == C_READY)
		evtimer_del(c->timer);
	cb(c->txn_arg, c, &c->res);
}

/* A local failure: the connection is over; whoever waits is told. c may be
 * gone after. */
static void fail(struct smtpc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct smtpc *c, const char *fmt, ...)
{
	struct smtpc_result r;
	enum cstate was = c->state;
	va_list ap;

	va_start(ap, fmt);
	r.code = 0;
	r.status[0] = '\0';
	vsnprintf(r.text, sizeof r.text, fmt, ap);
	va_end(ap);
	c->state = C_DEAD;
	evtimer_del(c->timer);
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (was == C_QUIT) {
		smtpc_free(c);
		return;
	}
	if (was == C_TXN || was == C_BODY || was == C_DOT) {
		if (c->answered == 0)
			c->res.mail = r;
		/* unanswered, or accepted for a message that never arrived */
		for (size_t i = 0; i < c->txn.nrcpts; i++)
			if (c->answered <= i + 1 || (c->res.rcpt[i].code >= 200 && c->res.rcpt[i].code < 300))
				c->res.rcpt[i] = r;
		c->res.data = r;
		txn_finish(c, 0);
		return;
	}
	if (was == C_READY || was == C_DEAD)
		return; /* idle: it is simply no longer usable */
	if (c->open_cb) {
		smtpc_open_cb cb = c->open_cb;
		c->open_cb = NULL;
		cb(c->open_arg, c, 0, &r);
	}
}

static void fail_reply(struct smtpc *c, const char *stage)
{
	struct smtpc_result r;
	smtpc_open_cb cb = c->open_cb;
	result_reply(&r, c->cur);
	log_debug(c->log_id, "event=smtp_refused stage=%s code=%d", stage, r.code);
	c->state = C_DEAD;
	evtimer_del(c->timer);
	c->open_cb = NULL;
	if (cb)
		cb(c->open_arg, c, 0, &r);
}

static void ready(struct smtpc *c)
{
	smtpc_open_cb cb = c->open_cb;
	c->state = C_READY;
	evtimer_del(c->timer);
	c->open_cb = NULL;
	if (cb)
		cb(c->open_arg, c, 1, NULL);
}

static void b64(const char *in, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)n);
}

/* Returns 1 when c was handed to a callback (it may be gone), 0 when it
 * waits for the AUTH reply. */
static int auth_or_ready(struct smtpc *c)
{
	if (!c->auth_user) {
		ready(c);
		return 1;
	}
	if (!c->info.tls) {
		fail(c, "AUTH without TLS refused: the server offers no STARTTLS");
		return 1;
	}
	if (c->info.ext.auth & SMTP_AUTH_PLAIN) {
		size_t ul = strlen(c->auth_user), pl = strlen(c->auth_pass);
		char *raw = xmalloc(ul + pl + 2), *enc = xmalloc((ul + pl + 2) * 4 / 3 + 8);
		raw[0] = '\0';
		memcpy(raw + 1, c->auth_user, ul);
		raw[1 + ul] = '\0';
		memcpy(raw + 2 + ul, c->auth_pass, pl);
		b64(raw, ul + pl + 2, enc);
		send_line(c, "AUTH PLAIN %s", enc);
		OPENSSL_cleanse(raw, ul + pl + 2);
		OPENSSL_cleanse(enc, strlen(enc));
		free(raw);
		free(enc);
		c->auth_step = 0;
	} else if (c->info.ext.auth & SMTP_AUTH_LOGIN) {
		send_line(c, "AUTH LOGIN");
		c->auth_step = 1;
	} else {
		fail(c, "the server offers neither AUTH PLAIN nor AUTH LOGIN");
		return 1;
	}
	c->state = C_AUTH;
	arm(c, c->o.command_timeout_ms);
	return 0;
}

static void start_tls(struct smtpc *c, enum cstate next)
{
	SSL *ssl = c->o.ssl_ctx ? SSL_new(c->o.ssl_ctx) : NULL;
	struct bufferevent *tb;
	unsigned char tmp[16];

	if (!ssl) {
		fail(c, "TLS not available (no context)");
		return;
	}
	if (c->tls_name) {
		int literal = inet_pton(AF_INET, c->tls_name, tmp) == 1 || inet_pton(AF_INET6, c->tls_name, tmp) == 1;
		if (!literal)
			SSL_set_tlsext_host_name(ssl, c->tls_name);
		if (literal)
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->tls_name);
		else
			SSL_set1_host(ssl, c->tls_name);
	}
	/* Whatever the server sent before the handshake is not believed. */
	evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
	if (c->o.tls_setup && c->o.tls_setup(c->o.tls_setup_arg, ssl) < 0) {
		SSL_free(ssl);
		fail(c, "cannot set up TLS for %s", c->info.peer);
		return;
	}
	tb = bufferevent_openssl_filter_new(c->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (!tb) {
		SSL_free(ssl);
		fail(c, "cannot create the TLS filter");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
	c->bev = tb;
	bufferevent_setcb(tb, on_read, on_write, on_event, c);
	bufferevent_setwatermark(tb, EV_READ, 0, SMTP_REPLY_LINE_MAX * 4);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	c->state = next;
	arm(c, c->o.command_timeout_ms);
}

static void tls_done(struct smtpc *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	const SSL_CIPHER *ci = SSL_get_current_cipher(ssl);
	c->info.tls = 1;
	str_copy(c->info.tls_version, SSL_get_version(ssl), sizeof c->info.tls_version);
	str_copy(c->info.tls_cipher, ci ? SSL_CIPHER_get_name(ci) : "unknown", sizeof c->info.tls_cipher);
	c->info.tls_verify_error = SSL_get0_peer_certificate(ssl) ? SSL_get_verify_result(ssl) : X509_V_ERR_UNSPECIFIED;
	c->info.tls_verified = c->info.tls_verify_error == X509_V_OK;
	c->info.tls_dane = c->info.tls_verified && SSL_get0_dane_authority(ssl, NULL, NULL) >= 0;
	log_debug(c->log_id, "event=tls peer=%s version=%s cipher=%s verified=%s", c->info.peer, c->info.tls_version,
		  c->info.tls_cipher, c->info.tls_verified ? "yes" : "no");
}

/* ---- transactions ---- */

static void send_cmd(struct smtpc *c, size_t i)
{
	if (i == 0) {
		char params[128] = "";
		size_t o = 0;
		off_t size = c->txn.len;
		if (c->info.ext.has_size)
			o += (size_t)snprintf(params + o, sizeof params - o, " SIZE=%lld", (long long)size);
		if (c->txn.body_8bit && c->info.ext.eightbitmime)
			o += (size_t)snprintf(params + o, sizeof params - o, " BODY=8BITMIME");
		if (c->txn.smtputf8 && c->info.ext.smtputf8)
			snprintf(params + o, sizeof params - o, " SMTPUTF8");
		send_line(c, "MAIL FROM:<%s>%s", c->txn.mail_from, params);
	} else if (i <= c->txn.nrcpts) {
		send_line(c, "RCPT TO:<%s>", c->txn.rcpts[i - 1]);
	} else {
		send_line(c, "DATA");
	}
	c->sent = i + 1;
}

/* Returns -1 when it failed (c may be gone), else 0. */
static int fill_body(struct smtpc *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	while (evbuffer_get_length(out) < BODY_HIGH && c->body_done < c->txn.len) {
		size_t want = (size_t)(c->txn.len - c->body_done) < BODY_BLOCK ? (size_t)(c->txn.len - c->body_done)
									: BODY_BLOCK;
		ssize_t n = pread(c->txn.fd, c->block, want, c->txn.off + c->body_done);
		size_t e;
		if (n <= 0) {
			fail(c, "cannot read the queued message: %s", n < 0 ? strerror(errno) : "short file");
			return -1;
		}
		c->body_done += n;
		e = smtp_dot_encode(&c->dot, c->block, (size_t)n, c->enc);
		evbuffer_add(out, c->enc, e);
	}
	if (c->body_done >= c->txn.len && c->state == C_BODY) {
		char end[8];
		size_t e = smtp_dot_finish(&c->dot, end);
		evbuffer_add(out, end, e);
		c->state = C_DOT;
		arm(c, c->o.data_timeout_ms);
	}
	return 0;
}

void smtpc_send(struct smtpc *c, const struct smtpc_txn *t, smtpc_txn_cb cb, void *arg)
{
	c->txn = *t;
	c->txn_cb = cb;
	c->txn_arg = arg;
	free(c->res.rcpt);
	memset(&c->res, 0, sizeof c->res);
	c->res.rcpt = xcalloc(t->nrcpts ? t->nrcpts : 1, sizeof *c->res.rcpt);
	c->ncmds = t->nrcpts + 2;
	c->sent = c->answered = c->accepted = 0;
	c->body_done = 0;
	smtp_dot_init(&c->dot);
	if (!c->block) {
		c->block = xmalloc(BODY_BLOCK);
		c->enc = xmalloc(2 * BODY_BLOCK + 2);
	}
	c->state = C_TXN;
	if (c->info.ext.pipelining) {
		for (size_t i = 0; i < c->ncmds; i++)
			send_cmd(c, i);
	} else {
		send_cmd(c, 0);
	}
	arm(c, c->o.command_timeout_ms);
}

/* One complete reply during a transaction. Returns 1 if c was handed to
 * the caller (stop reading). */
static int txn_reply(struct smtpc *c)
{
	size_t i = c->answered++;
	size_t n = c->txn.nrcpts;
	int mail_ok = c->res.mail.code >= 200 && c->res.mail.code < 300;

	if (i == 0) {
		result_reply(&c->res.mail, c->cur);
		mail_ok = c->cur->code >= 200 && c->cur->code < 300;
		if (!mail_ok) {
			for (size_t k = 0; k < n; k++)
				c->res.rcpt[k] = c->res.mail;
			c->res.data = c->res.mail;
			if (!c->info.ext.pipelining) {
				send_line(c, "RSET");
				c->answered = c->ncmds; /* the RSET reply is read as the end */
				c->sent = c->ncmds + 1;
				arm(c, c->o.command_timeout_ms);
				return 0;
			}
		}
	} else if (i <= n) {
		if (mail_ok) {
			result_reply(&c->res.rcpt[i - 1], c->cur);
			if (c->cur->code >= 200 && c->cur->code < 300)
				c->accepted++;
		}
	} else if (i == n + 1) {
		/* DATA */
		if (!mail_ok) {
			/* MAIL failed and the server rightly refused DATA */
			if (c->cur->code == 354) {
				fail(c, "the server accepted DATA after refusing MAIL");
				return 1;
			}
			txn_finish(c, 1);
			return 1;
		}
		if (c->cur->code == 354) {
			if (c->accepted == 0) {
				fail(c, "the server accepted DATA with no recipient");
				return 1;
			}
			c->state = C_BODY;
			arm(c, c->o.data_timeout_ms);
			return fill_body(c) < 0;
		}
		result_reply(&c->res.data, c->cur);
		if (c->accepted > 0)
			/* recipients were accepted but DATA was not */
			for (size_t k = 0; k < n; k++)
				if (c->res.rcpt[k].code >= 200 && c->res.rcpt[k].code < 300)
					c->res.rcpt[k] = c->res.data;
		/* the server may still hold the transaction open: do not reuse */
		txn_finish(c, 0);
		return 1;
	} else {
		/* the RSET after a refused MAIL without pipelining */
		txn_finish(c, c->cur->code >= 200 && c->cur->code < 300);
		return 1;
	}
	if (!c->info.ext.pipelining) {
		if (c->answered == n + 1 && c->accepted == 0) {
			/* nobody accepted: no DATA; RSET and finish */
			result_set(&c->res.data, 0, NULL, "no recipient was accepted");
			send_line(c, "RSET");
			c->answered = c->ncmds;
			c->sent = c->ncmds + 1;
		} else {
			send_cmd(c, c->answered);
		}
	}
	arm(c, c->o.command_timeout_ms);
	return 0;
}

/* One complete reply. Returns 1 if c was handed to a callback (or freed). */
static int handle_reply(struct smtpc *c)
{
	const struct smtp_reply *r = c->cur;
	int ok = r->code >= 200 && r->code < 400;

	switch (c->state) {
	case C_GREETING:
		if (r->code != 220) {
			fail_reply(c, "greeting");
			return 1;
		}
		send_line(c, "EHLO %s", c->helo);
		c->state = C_EHLO;
		arm(c, c->o.command_timeout_ms);
		return 0;
	case C_EHLO:
		if (r->code != 250) {
			if (c->ehlo_after_tls) {
				fail_reply(c, "ehlo");
				return 1;
			}
			send_line(c, "HELO %s", c->helo);
			c->state = C_HELO;
			arm(c, c->o.command_timeout_ms);
			return 0;
		}
		smtp_ehlo_parse(r, &c->info.ext);
		if (!c->info.tls && c->info.ext.starttls && c->o.ssl_ctx &&
		    (c->o.tls == SMTPC_TLS_OPPORTUNISTIC || c->o.tls == SMTPC_TLS_STARTTLS)) {
			send_line(c, "STARTTLS");
			c->state = C_STARTTLS;
			arm(c, c->o.command_timeout_ms);
			return 0;
		}
		if (!c->info.tls && c->o.tls == SMTPC_TLS_STARTTLS) {
			c->info.starttls_missing = 1;
			fail(c, "the server does not offer STARTTLS, which is required");
			return 1;
		}
		return auth_or_ready(c);
	case C_HELO:
		if (r->code != 250) {
			fail_reply(c, "helo");
			return 1;
		}
		memset(&c->info.ext, 0, sizeof c->info.ext);
		if (c->o.tls == SMTPC_TLS_STARTTLS) {
			c->info.starttls_missing = 1;
			fail(c, "the server does not offer STARTTLS, which is required");
			return 1;
		}
		return auth_or_ready(c);
	case C_STARTTLS:
		if (r->code != 220) {
			if (c->o.tls == SMTPC_TLS_STARTTLS) {
				c->info.starttls_missing = 1;
				fail_reply(c, "starttls");
				return 1;
			}
			return auth_or_ready(c);
		}
		start_tls(c, C_TLS);
		return 1; /* the input buffer was replaced */
	case C_AUTH:
		if (c->auth_step == 0 || c->auth_step == 3) {
			if (r->code != 235) {
				fail_reply(c, "auth");
				return 1;
			}
			log_debug(c->log_id, "event=auth_ok peer=%s", c->info.peer);
			ready(c);
			return 1;
		}
		if (r->code != 334) {
			fail_reply(c, "auth");
			return 1;
		} else {
			const char *v = c->auth_step == 1 ? c->auth_user : c->auth_pass;
			size_t l = strlen(v);
			char *enc = xmalloc(l * 4 / 3 + 8);
			b64(v, l, enc);
			send_line(c, "%s", enc);
			OPENSSL_cleanse(enc, strlen(enc));
			free(enc);
			c->auth_step++;
			arm(c, c->o.command_timeout_ms);
		}
		return 0;
	case C_TXN:
		return txn_reply(c);
	case C_BODY:
	case C_DOT:
		result_reply(&c->res.data, c->cur);
		for (size_t k = 0; k < c->txn.nrcpts; k++)
			if (c->res.rcpt[k].code >= 200 && c->res.rcpt[k].code < 300)
				c->res.rcpt[k] = c->res.data;
		txn_finish(c, c->state == C_DOT);
		return 1;
	case C_QUIT:
		smtpc_free(c);
		return 1;
	case C_READY:
		/* unsolicited (a 421 before closing): the connection is done */
		c->state = C_DEAD;
		(void)ok;
		return 1;
	default:
		return 1;
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t n;

	while (c->state != C_DEAD && (line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF))) {
		enum smtp_reply_rc rc = smtp_reply_feed(&c->reply, line, n);
		free(line);
		if (rc == SMTP_REPLY_BAD) {
			smtp_reply_clear(&c->reply);
			fail(c, "malformed reply from %s", c->info.peer);
			return;
		}
		if (rc == SMTP_REPLY_DONE) {
			/* handled from a copy: the handler may free c */
			struct smtp_reply done = c->reply;
			int stop;
			smtp_reply_init(&c->reply);
			c->cur = &done;
			stop = handle_reply(c);
			smtp_reply_clear(&done);
			if (stop)
				return; /* c may be gone */
			c->cur = NULL;
		}
	}
	if (c->state != C_DEAD && evbuffer_get_length(in) > SMTP_REPLY_LINE_MAX)
		fail(c, "reply line from %s longer than %d bytes", c->info.peer, SMTP_REPLY_LINE_MAX);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;
	(void)bev;
	if (c->state == C_BODY) {
		arm(c, c->o.data_timeout_ms);
		fill_body(c);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc *c = arg;
	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == C_CONNECT) {
			if (c->o.tls == SMTPC_TLS_IMPLICIT) {
				start_tls(c, C_TLS_IMPLICIT);
				return;
			}
			c->state = C_GREETING;
			arm(c, c->o.command_timeout_ms);
			return;
		}
		if (c->state == C_TLS || c->state == C_TLS_IMPLICIT) {
			tls_done(c);
			if (c->state == C_TLS_IMPLICIT) {
				c->state = C_GREETING;
			} else {
				/* RFC 3207 section 4.2: forget what was learnt before TLS */
				memset(&c->info.ext, 0, sizeof c->info.ext);
				c->ehlo_after_tls = 1;
				send_line(c, "EHLO %s", c->helo);
				c->state = C_EHLO;
			}
			arm(c, c->o.command_timeout_ms);
			/* a reply may already be buffered */
			on_read(c->bev, c);
		}
		return;
	}
	if (c->state == C_TLS || c->state == C_TLS_IMPLICIT) {
		unsigned long e = bufferevent_get_openssl_error(c->bev);
		char buf[256] = "connection closed";
		if (e)
			ERR_error_string_n(e, buf, sizeof buf);
		while (bufferevent_get_openssl_error(c->bev))
			;
		c->info.tls_failed = 1;
		fail(c, "TLS handshake with %s failed: %s", c->info.peer, buf);
		return;
	}
	if (c->state == C_CONNECT) {
		int err = EVUTIL_SOCKET_ERROR();
		fail(c, "cannot connect to %s: %s", c->info.peer, err ? strerror(err) : "connection failed");
		return;
	}
	if (what & BEV_EVENT_EOF)
		fail(c, "%s closed the connection", c->info.peer);
	else
		fail(c, "connection to %s lost", c->info.peer);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;
	static const char *const names[] = {
		[C_CONNECT] = "connect", [C_TLS_IMPLICIT] = "TLS handshake", [C_GREETING] = "greeting",
		[C_EHLO] = "EHLO", [C_HELO] = "HELO", [C_STARTTLS] = "STARTTLS", [C_TLS] = "TLS handshake",
		[C_AUTH] = "AUTH", [C_READY] = "idle", [C_TXN] = "MAIL/RCPT/DATA", [C_BODY] = "message data",
		[C_DOT] = "end of data", [C_QUIT] = "QUIT", [C_DEAD] = "closed",
	};
	(void)fd;
	(void)what;
	if (c->state == C_QUIT) {
		smtpc_free(c);
		return;
	}
	fail(c, "timeout at %s with %s", names[c->state], c->info.peer);
}

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;
	smtpc_open_cb cb = c->open_cb;
	(void)fd;
	(void)what;
	c->state = C_DEAD;
	c->open_cb = NULL;
	if (cb)
		cb(c->open_arg, c, 0, &c->fail);
}

struct smtpc *smtpc_open(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
			 const struct smtpc_opts *opts, smtpc_open_cb cb, void *arg)
{
	struct smtpc *c = xcalloc(1, sizeof *c);
	evutil_socket_t fd;
	char host[INET6_ADDRSTRLEN] = "?";

	c->base = base;
	c->o = *opts;
	c->helo = xstrdup(opts->helo);
	c->tls_name = opts->tls_name ? xstrdup(opts->tls_name) : NULL;
	c->auth_user = opts->auth_user ? xstrdup(opts->auth_user) : NULL;
	c->auth_pass = opts->auth_pass ? xstrdup(opts->auth_pass) : NULL;
	c->log_id = xstrdup(opts->log_id ? opts->log_id : "smtpc");
	c->o.log_id = c->log_id;
	c->open_cb = cb;
	c->open_arg = arg;
	c->timer = evtimer_new(base, on_timer, c);
	c->defer = evtimer_new(base, on_defer, c);
	smtp_reply_init(&c->reply);
	if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof host);
		snprintf(c->info.peer, sizeof c->info.peer, "[%s]:%u", host,
			 ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof host);
		snprintf(c->info.peer, sizeof c->info.peer, "%s:%u", host, ntohs(((const struct sockaddr_in *)sa)->sin_port));
	}

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		result_set(&c->fail, 0, NULL, "socket: %s", strerror(errno));
		goto deferred;
	}
	if (opts->source && *opts->source) {
		struct sockaddr_storage ss;
		socklen_t sl = 0;
		memset(&ss, 0, sizeof ss);
		if (sa->sa_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			s6->sin6_family = AF_INET6;
			if (inet_pton(AF_INET6, opts->source, &s6->sin6_addr) == 1)
				sl = sizeof *s6;
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			s4->sin_family = AF_INET;
			if (inet_pton(AF_INET, opts->source, &s4->sin_addr) == 1)
				sl = sizeof *s4;
		}
		if (sl && bind(fd, (struct sockaddr *)&ss, sl) < 0) {
			result_set(&c->fail, 0, NULL, "cannot bind to %s: %s", opts->source, strerror(errno));
			close(fd);
			goto deferred;
		}
	}
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		result_set(&c->fail, 0, NULL, "cannot create a bufferevent");
		goto deferred;
	}
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, SMTP_REPLY_LINE_MAX * 4);
	bufferevent_setwatermark(c->bev, EV_WRITE, BODY_HIGH / 4, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->state = C_CONNECT;
	if (bufferevent_socket_connect(c->bev, sa, (int)salen) < 0) {
		result_set(&c->fail, 0, NULL, "cannot connect to %s: %s", c->info.peer, strerror(errno));
		goto deferred;
	}
	arm(c, opts->connect_timeout_ms);
	return c;
deferred: {
	struct timeval zero = { 0, 0 };
	evtimer_add(c->defer, &zero);
	return c;
}
}

const struct smtpc_info *smtpc_info(const struct smtpc *c)
{
	return &c->info;
}

int smtpc_usable(const struct smtpc *c)
{
	return c->state == C_READY;
}

void smtpc_quit(struct smtpc *c)
{
	if (c->state != C_READY) {
		smtpc_free(c);
		return;
	}
	send_line(c, "QUIT");
	c->state = C_QUIT;
	arm(c, QUIT_WAIT_MS);
}

void smtpc_free(struct smtpc *c)
{
	if (!c)
		return;
	if (c->bev)
		bufferevent_free(c->bev);
	event_free(c->timer);
	event_free(c->defer);
	smtp_reply_clear(&c->reply);
	if (c->auth_pass) {
		OPENSSL_cleanse(c->auth_pass, strlen(c->auth_pass));
		free(c->auth_pass);
	}
	free(c->helo);
	free(c->tls_name);
	free(c->auth_user);
	free(c->log_id);
	free(c->res.rcpt);
	free(c->block);
	free(c->enc);
	free(c);
}

SSL_CTX *smtpc_tls_ctx(const char *ca_file, int verify, char *err, size_t errsize)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		snprintf(err, errsize, "cannot create a TLS client context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_default_verify_paths(ctx);
	if (ca_file && *ca_file && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		char buf[256];
		ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
		ERR_clear_error();
		snprintf(err, errsize, "cannot load %s: %s", ca_file, buf);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	return ctx;
}

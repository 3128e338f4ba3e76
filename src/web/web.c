/*
 * web: see web.h. The life of one request:
 *
 *   evhttp parses it (headers at most WEB_MAX_HEADERS bytes, body at most
 *   WEB_MAX_BODY, WEB_TIMEOUT_S to arrive) -> on_request: Host check ->
 *   /metrics (loopback, token or session) | /login | /logout | a session
 *   check (none: 303 to /login) -> the page's function inside the frame.
 *
 * POST /login: the CSRF check (a double-submit token: the login form's
 * hidden field must equal the short-lived postern_login cookie it came
 * with), the throttle, then the stored hash is read on the loop (one indexed
 * SQLite read) and the yescrypt comparison goes to our worker thread. The
 * request stays parked in evhttp meanwhile: libevent keeps a request whose
 * reply has not started alive even if its client goes away, and frees it
 * when we reply. An address that is not an admin, or has no password, is
 * checked against a dummy hash so the answer takes the same time.
 *
 * Sessions live in memory (a restart logs everybody out), at most
 * WEB_MAX_SESSIONS (the oldest goes first), each with its own CSRF token.
 * A session whose address is no longer in [web] admins ends at once.
 */
#include "web/web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "config.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/password.h"
#include "lib/util.h"
#include "lib/worker.h"
#include "smtp/server.h"
#include "store/store.h"
#include "web/form.h"
#include "web/html.h"

#define WEB_MAX_HEADERS 8192
#define WEB_MAX_BODY 8192
#define WEB_TIMEOUT_S 30
#define WEB_MAX_SESSIONS 64
#define WEB_MAX_THROTTLE 256
#define WEB_MAX_LOGINS 4        /* password checks in flight */
#define WEB_FREE_FAILURES 4     /* failed logins per address before the delay */
#define WEB_DELAY_MAX_MS 300000 /* the longest delay: 5 minutes */
#define WEB_THROTTLE_FORGET_MS 3600000
#define TOKEN_HEX 64            /* 256 bits */
#define MAX_ADDRESS 254
#define COOKIE_SESSION "postern_session"
#define COOKIE_LOGIN "postern_login"

struct web_session {
	char token[TOKEN_HEX + 1]; /* "" for a free slot */
	char csrf[TOKEN_HEX + 1];
	char address[MAX_ADDRESS + 1];
	uint64_t created_ms, expires_ms; /* monotonic */
};

struct throttle {
	char key[MAX_ADDRESS + 1]; /* "" for a free slot */
	unsigned failures;
	uint64_t until_ms, last_ms;
};

struct page {
	char *path, *title;
	web_render_fn fn;
	void *arg;
};

struct web {
	struct event_base *base;
	struct runtime *rt;
	struct store *store;
	struct evhttp *http; /* NULL: the dashboard is off */
	SSL_CTX *tls;        /* for HTTPS, or NULL */
	struct worker_pool *pool;
	char *dummy_hash;
	int64_t started;
	int logins_inflight;
	struct page pages[WEB_MAX_PAGES];
	size_t npages;
	struct web_session sessions[WEB_MAX_SESSIONS];
	struct throttle throttle[WEB_MAX_THROTTLE];
	struct metric *m_logins, *m_uptime, *m_queue_msgs, *m_queue_rcpts;
};

static void random_token(char out[TOKEN_HEX + 1])
{
	unsigned char raw[TOKEN_HEX / 2];
	static const char hex[] = "0123456789abcdef";
	if (RAND_bytes(raw, sizeof raw) != 1)
		abort(); /* no randomness: nothing we could safely do */
	for (size_t i = 0; i < sizeof raw; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[TOKEN_HEX] = '\0';
	OPENSSL_cleanse(raw, sizeof raw);
}

/* Constant-time equality of two tokens of TOKEN_HEX characters. */
static int token_equal(const char *a, const char *b)
{
	return strlen(a) == TOKEN_HEX && strlen(b) == TOKEN_HEX && CRYPTO_memcmp(a, b, TOKEN_HEX) == 0;
}

static const struct config *cfg_of(const struct web *w)
{
	return w->rt->cfg;
}

static int is_admin(const struct config *c, const char *address)
{
	for (size_t i = 0; i < c->nweb_admins; i++)
		if (!strcasecmp(c->web_admins[i], address))
			return 1;
	return 0;
}

/* The client's address as text, for logs. */
static const char *client_ip(struct evhttp_request *req, char *buf, size_t n)
{
	struct evhttp_connection *con = evhttp_request_get_connection(req);
	const struct sockaddr *sa = con ? evhttp_connection_get_addr(con) : NULL;
	str_copy(buf, "?", n);
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)n);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)n);
	return buf;
}

static int client_is_loopback(struct evhttp_request *req)
{
	struct evhttp_connection *con = evhttp_request_get_connection(req);
	const struct sockaddr *sa = con ? evhttp_connection_get_addr(con) : NULL;
	if (sa && sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa && sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return 0;
}

/* ---- replies ---------------------------------------------------------- */

static void security_headers(struct evhttp_request *req, const char *type)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "Content-Security-Policy",
			  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
			  "frame-ancestors 'none'; base-uri 'none'");
}

static void send_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	struct evbuffer *b = evbuffer_new();
	security_headers(req, "text/plain; charset=utf-8");
	evbuffer_add_printf(b, "%s\n", text);
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

static void redirect(struct evhttp_request *req, const char *where)
{
	security_headers(req, "text/plain; charset=utf-8");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Location", where);
	evhttp_send_reply(req, 303, "See Other", NULL);
}

static void set_cookie(struct web *w, struct evhttp_request *req, const char *name, const char *value, long max_age)
{
	char *c = xasprintf("%s=%s; Path=/; Max-Age=%ld; HttpOnly; SameSite=Strict%s", name, value, max_age,
			    w->tls ? "; Secure" : "");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", c);
	free(c);
}

static const char STYLE[] =
	"body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#f6f7f9}"
	"header{background:#263238;color:#fff;padding:8px 16px;display:flex;align-items:center;gap:16px;flex-wrap:wrap}"
	"header a{color:#cfd8dc;text-decoration:none;padding:4px 8px;border-radius:4px}"
	"header a.on{background:#455a64;color:#fff}header form{margin-left:auto}"
	"main{padding:16px;max-width:1100px}h1{font-size:22px;margin:4px 0 12px}h2{font-size:17px;margin:20px 0 8px}"
	"table{border-collapse:collapse;background:#fff;margin:8px 0}td,th{border:1px solid #ddd;padding:4px 8px;"
	"text-align:left;vertical-align:top;font-size:14px}th{background:#eceff1}"
	".pass{color:#2e7d32;font-weight:bold}.warn{color:#e65100;font-weight:bold}.fail{color:#c62828;font-weight:bold}"
	".chart{background:#fff;border:1px solid #ddd;margin:8px 0;max-width:100%;height:auto}"
	".muted{color:#666}.err{color:#c62828}pre{background:#fff;border:1px solid #ddd;padding:8px;overflow:auto}"
	"button{padding:4px 12px}input{padding:4px;margin:4px 0 10px;width:100%;box-sizing:border-box}"
	".login{max-width:320px;margin:80px auto;background:#fff;padding:24px;border:1px solid #ddd}"
	"footer{color:#888;font-size:12px;padding:16px}";

static void page_open(struct web *w, struct evbuffer *b, const char *title, const struct web_session *s,
		      const char *path)
{
	html_printf(b,
		    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		    "<title>%s - postern %s</title><style>",
		    title, cfg_of(w)->hostname);
	evbuffer_add(b, STYLE, sizeof STYLE - 1); /* ours, and free of markup */
	html_printf(b, "</style></head><body><header><b>postern</b> %s", cfg_of(w)->hostname);
	if (s) {
		evbuffer_add(b, "<nav>", 5);
		for (size_t i = 0; i < w->npages; i++)
			html_printf(b, "<a href=\"%s\"%s>%s</a>", w->pages[i].path,
				    !strcmp(w->pages[i].path, path) ? " class=\"on\"" : "", w->pages[i].title);
		html_printf(b,
			    "</nav><form method=\"post\" action=\"/logout\"><span class=\"muted\">%s</span> "
			    "<input type=\"hidden\" name=\"csrf\" value=\"%s\">"
			    "<button type=\"submit\">Log out</button></form>",
			    s->address, s->csrf);
	}
	evbuffer_add(b, "</header><main>", 15);
}

static void page_send(struct evhttp_request *req, struct evbuffer *b, int code, const char *reason)
{
	char when[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
	evbuffer_add_printf(b, "</main><footer>postern %s &#183; %s</footer></body></html>\n", POSTERN_VERSION, when);
	security_headers(req, "text/html; charset=utf-8");
	evhttp_send_reply(req, code, reason, b);
}

/* ---- sessions and throttling -------------------------------------------- */

static struct web_session *session_find(struct web *w, struct evhttp_request *req)
{
	const char *cookie = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
	char token[TOKEN_HEX + 2];
	uint64_t now = now_ms();
	struct web_session *found = NULL;

	if (!cookie || form_cookie(cookie, COOKIE_SESSION, token, sizeof token) != TOKEN_HEX)
		return NULL;
	for (size_t i = 0; i < WEB_MAX_SESSIONS; i++) {
		struct web_session *s = &w->sessions[i];
		if (!s->token[0])
			continue;
		if (s->expires_ms <= now || !is_admin(cfg_of(w), s->address)) {
			memset(s, 0, sizeof *s);
			continue;
		}
		if (token_equal(s->token, token))
			found = s;
	}
	return found;
}

static struct web_session *session_new(struct web *w, const char *address)
{
	struct web_session *s = &w->sessions[0];
	uint64_t now = now_ms();
	for (size_t i = 0; i < WEB_MAX_SESSIONS; i++) {
		struct web_session *t = &w->sessions[i];
		if (!t->token[0] || t->expires_ms <= now) {
			s = t;
			break;
		}
		if (t->created_ms < s->created_ms)
			s = t; /* all taken: the oldest goes */
	}
	memset(s, 0, sizeof *s);
	random_token(s->token);
	random_token(s->csrf);
	str_copy(s->address, address, sizeof s->address);
	s->created_ms = now;
	s->expires_ms = now + cfg_of(w)->web_session_lifetime_ms;
	return s;
}

static struct throttle *throttle_find(struct web *w, const char *key, int create)
{
	struct throttle *oldest = &w->throttle[0], *empty = NULL;
	uint64_t now = now_ms();
	for (size_t i = 0; i < WEB_MAX_THROTTLE; i++) {
		struct throttle *t = &w->throttle[i];
		if (t->key[0] && now - t->last_ms > WEB_THROTTLE_FORGET_MS)
			memset(t, 0, sizeof *t);
		if (!t->key[0]) {
			if (!empty)
				empty = t;
			continue;
		}
		if (!strcmp(t->key, key))
			return t;
		if (t->last_ms < oldest->last_ms)
			oldest = t;
	}
	if (!create)
		return NULL;
	if (!empty) {
		empty = oldest;
		memset(empty, 0, sizeof *empty);
	}
	str_copy(empty->key, key, sizeof empty->key);
	return empty;
}

/* Milliseconds until key may try again; 0: now. */
static uint64_t throttle_wait(struct web *w, const char *key)
{
	struct throttle *t = throttle_find(w, key, 0);
	uint64_t now = now_ms();
	return t && t->until_ms > now ? t->until_ms - now : 0;
}

static void throttle_failed(struct web *w, const char *key)
{
	struct throttle *t = throttle_find(w, key, 1);
	uint64_t now = now_ms(), delay;
	t->failures++;
	t->last_ms = now;
	if (t->failures >= WEB_FREE_FAILURES) {
		unsigned shift = t->failures - WEB_FREE_FAILURES;
		delay = shift >= 9 ? WEB_DELAY_MAX_MS : 1000u << shift;
		if (delay > WEB_DELAY_MAX_MS)
			delay = WEB_DELAY_MAX_MS;
		t->until_ms = now + delay;
	}
}

static void throttle_clear(struct web *w, const char *key)
{
	struct throttle *t = throttle_find(w, key, 0);
	if (t)
		memset(t, 0, sizeof *t);
}

/* ---- login and logout ------------------------------------------------------ */

static void login_page(struct web *w, struct evhttp_request *req, int code, const char *reason,
		       const char *message, const char *address)
{
	struct evbuffer *b = evbuffer_new();
	char token[TOKEN_HEX + 1];
	random_token(token);
	set_cookie(w, req, COOKIE_LOGIN, token, 3600);
	page_open(w, b, "Log in", NULL, "/login");
	evbuffer_add_printf(b, "<form class=\"login\" method=\"post\" action=\"/login\"><h1>Log in</h1>");
	if (message)
		html_printf(b, "<p class=\"err\" id=\"message\">%s</p>", message);
	html_printf(b,
		    "<label for=\"address\">Address</label><input id=\"address\" name=\"address\" type=\"email\" "
		    "autocomplete=\"username\" required value=\"%s\">"
		    "<label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" "
		    "autocomplete=\"current-password\" required>"
		    "<input type=\"hidden\" name=\"login_token\" value=\"%s\"><button type=\"submit\">Log in</button>"
		    "<p class=\"muted\">The address and mail password of a mailbox listed in [web] admins.</p></form>",
		    address ? address : "", token);
	page_send(req, b, code, reason);
	evbuffer_free(b);
}

struct login_job {
	struct web *w;
	struct evhttp_request *req;
	char address[MAX_ADDRESS + 1];
	char password[PASSWORD_MAX + 1];
	char *hash;
	int admin;
	int ok;
	char ip[INET6_ADDRSTRLEN];
};

static void login_work(void *arg)
{
	struct login_job *j = arg;
	j->ok = password_verify(j->password, j->hash) && j->admin;
	explicit_bzero(j->password, sizeof j->password);
}

static void login_done(void *arg)
{
	struct login_job *j = arg;
	struct web *w = j->w;
	char v[300];
	log_value(v, sizeof v, j->address, strlen(j->address));
	w->logins_inflight--;
	if (j->ok && is_admin(cfg_of(w), j->address)) {
		struct web_session *s = session_new(w, j->address);
		throttle_clear(w, j->address);
		metric_inc(w->m_logins, "ok");
		log_info(NULL, "event=web_login address=%s client=%s result=ok", v, j->ip);
		set_cookie(w, j->req, COOKIE_SESSION, s->token, (long)(cfg_of(w)->web_session_lifetime_ms / 1000));
		set_cookie(w, j->req, COOKIE_LOGIN, "", 0);
		redirect(j->req, w->npages ? w->pages[0].path : "/");
	} else {
		throttle_failed(w, j->address);
		metric_inc(w->m_logins, "failed");
		log_info(NULL, "event=web_login address=%s client=%s result=failed", v, j->ip);
		login_page(w, j->req, 403, "Forbidden", "Wrong address or password.", j->address);
	}
	free(j->hash);
	explicit_bzero(j, sizeof *j);
	free(j);
}

static void handle_login(struct web *w, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, (ssize_t)len) : "";
	const char *cookie = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
	char token[TOKEN_HEX + 2], ctoken[TOKEN_HEX + 2], address[MAX_ADDRESS + 1], v[300];
	struct login_job *j;
	uint64_t wait;

	if (form_field(body, len, "login_token", token, sizeof token) < 0 || !cookie ||
	    form_cookie(cookie, COOKIE_LOGIN, ctoken, sizeof ctoken) < 0 || !token_equal(token, ctoken)) {
		login_page(w, req, 403, "Forbidden", "The login form had expired; please try again.", NULL);
		return;
	}
	if (form_field(body, len, "address", address, sizeof address) <= 0) {
		login_page(w, req, 400, "Bad Request", "Give the address of an administrator's mailbox.", NULL);
		return;
	}
	str_lower(str_trim(address));
	j = xcalloc(1, sizeof *j);
	if (form_field(body, len, "password", j->password, sizeof j->password) < 0) {
		free(j);
		login_page(w, req, 400, "Bad Request", "The password is missing or too long.", address);
		return;
	}
	/* The form is parsed; the body is no longer needed in memory. */
	evbuffer_drain(in, len);
	log_value(v, sizeof v, address, strlen(address));
	client_ip(req, j->ip, sizeof j->ip);
	if ((wait = throttle_wait(w, address)) > 0) {
		char msg[160];
		explicit_bzero(j, sizeof *j);
		free(j);
		metric_inc(w->m_logins, "throttled");
		log_info(NULL, "event=web_login address=%s result=throttled wait_ms=%llu", v, (unsigned long long)wait);
		snprintf(msg, sizeof msg, "Too many failed logins for this address; try again in %llu seconds.",
			 (unsigned long long)(wait + 999) / 1000);
		login_page(w, req, 429, "Too Many Requests", msg, address);
		return;
	}
	if (w->logins_inflight >= WEB_MAX_LOGINS) {
		explicit_bzero(j, sizeof *j);
		free(j);
		metric_inc(w->m_logins, "throttled");
		login_page(w, req, 503, "Service Unavailable", "Too many logins at once; try again in a moment.", address);
		return;
	}
	j->w = w;
	j->req = req;
	str_copy(j->address, address, sizeof j->address);
	j->admin = is_admin(cfg_of(w), address);
	if (j->admin) {
		char hash[512];
		if (store_user_get_password(w->store, address, hash, sizeof hash) == STORE_OK)
			j->hash = xstrdup(hash);
	}
	if (!j->hash) {
		/* Not an admin, or no password: spend the same time on a dummy
		 * hash, and fail. */
		j->hash = xstrdup(w->dummy_hash);
		j->admin = 0;
	}
	w->logins_inflight++;
	worker_submit(w->pool, login_work, login_done, j);
}

static void handle_logout(struct web *w, struct evhttp_request *req, struct web_session *s)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, (ssize_t)len) : "";
	char csrf[TOKEN_HEX + 2], v[300];

	if (!s) {
		redirect(req, "/login");
		return;
	}
	if (form_field(body, len, "csrf", csrf, sizeof csrf) < 0 || !token_equal(csrf, s->csrf)) {
		send_text(req, 403, "Forbidden", "The form's security token does not match; reload the page.");
		return;
	}
	log_info(NULL, "event=web_logout address=%s", log_value(v, sizeof v, s->address, strlen(s->address)));
	memset(s, 0, sizeof *s);
	set_cookie(w, req, COOKIE_SESSION, "", 0);
	redirect(req, "/login");
}

/* ---- /metrics ----------------------------------------------------------------- */

static int metrics_allowed(struct web *w, struct evhttp_request *req)
{
	const struct config *c = cfg_of(w);
	const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	if (!strcasecmp(c->web_metrics_loopback, "yes") && client_is_loopback(req))
		return 1;
	if (*c->web_metrics_token && auth && !strncasecmp(auth, "Bearer ", 7)) {
		const char *t = auth + 7;
		size_t tl = strlen(c->web_metrics_token);
		while (*t == ' ')
			t++;
		if (strlen(t) == tl && CRYPTO_memcmp(t, c->web_metrics_token, tl) == 0)
			return 1;
	}
	return session_find(w, req) != NULL;
}

static void handle_metrics(struct web *w, struct evhttp_request *req)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	struct evbuffer *b;

	if (!metrics_allowed(w, req)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer realm=\"postern\"");
		send_text(req, 401, "Unauthorized",
			  "/metrics needs 'Authorization: Bearer TOKEN' ([web] metrics_token), a login, or a loopback client.");
		return;
	}
	f = open_memstream(&text, &len);
	if (!f)
		abort();
	metrics_write(f);
	fclose(f);
	b = evbuffer_new();
	evbuffer_add(b, text, len);
	free(text);
	security_headers(req, "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

/* ---- routing --------------------------------------------------------------------- */

/* DNS rebinding: a page of another site whose name now points at us must
 * not be answered. We answer names that can only mean this host. */
static int host_ok(struct web *w, struct evhttp_request *req)
{
	const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
	char name[300];
	unsigned char tmp[16];
	size_t n;
	if (!host)
		return 1; /* HTTP/1.0: no name was used */
	if (host[0] == '[') {
		const char *end = strchr(host, ']');
		if (!end || (size_t)(end - host - 1) >= sizeof name)
			return 0;
		memcpy(name, host + 1, (size_t)(end - host - 1));
		name[end - host - 1] = '\0';
		return inet_pton(AF_INET6, name, tmp) == 1;
	}
	n = strcspn(host, ":");
	if (n >= sizeof name)
		return 0;
	memcpy(name, host, n);
	name[n] = '\0';
	if (name[n ? n - 1 : 0] == '.' && n)
		name[n - 1] = '\0';
	return inet_pton(AF_INET, name, tmp) == 1 || !strcasecmp(name, "localhost") ||
	       !strcasecmp(name, cfg_of(w)->hostname);
}

static const struct page *page_find(struct web *w, const char *path)
{
	for (size_t i = 0; i < w->npages; i++)
		if (!strcmp(w->pages[i].path, path))
			return &w->pages[i];
	return NULL;
}

static void render_page(struct web *w, struct evhttp_request *req, const struct page *p, struct web_session *s)
{
	struct evbuffer *b = evbuffer_new();
	struct web_page_ctx ctx = {
		.cfg = cfg_of(w),
		.store = w->store,
		.req = req,
		.now = (int64_t)time(NULL),
		.started = w->started,
		.path = p->path,
	};
	page_open(w, b, p->title, s, p->path);
	html_printf(b, "<h1>%s</h1>", p->title);
	p->fn(b, &ctx, p->arg);
	page_send(req, b, 200, "OK");
	evbuffer_free(b);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct web *w = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	struct web_session *s;
	const struct page *p;

	if (!path || !*path)
		path = "/";
	if (!host_ok(w, req)) {
		send_text(req, 421, "Misdirected Request", "This server answers only to its own name or address.");
		return;
	}
	if (!strcmp(path, "/metrics")) {
		if (method != EVHTTP_REQ_GET)
			send_text(req, 405, "Method Not Allowed", "GET only.");
		else
			handle_metrics(w, req);
		return;
	}
	s = session_find(w, req);
	if (!strcmp(path, "/login")) {
		if (method == EVHTTP_REQ_POST)
			handle_login(w, req);
		else if (s)
			redirect(req, w->npages ? w->pages[0].path : "/");
		else
			login_page(w, req, 200, "OK", NULL, NULL);
		return;
	}
	if (!strcmp(path, "/logout")) {
		if (method != EVHTTP_REQ_POST)
			send_text(req, 405, "Method Not Allowed", "Log out with the button (POST).");
		else
			handle_logout(w, req, s);
		return;
	}
	if (!s) {
		redirect(req, "/login");
		return;
	}
	if (!strcmp(path, "/")) {
		redirect(req, w->npages ? w->pages[0].path : "/login");
		return;
	}
	p = page_find(w, path);
	if (!p) {
		struct evbuffer *b = evbuffer_new();
		page_open(w, b, "Not found", s, "");
		html_printf(b, "<h1>Not found</h1><p>There is no page %s.</p>", path);
		page_send(req, b, 404, "Not Found");
		evbuffer_free(b);
		return;
	}
	if (method != EVHTTP_REQ_GET) {
		send_text(req, 405, "Method Not Allowed", "GET only.");
		return;
	}
	render_page(w, req, p, s);
}

/* ---- set-up ---------------------------------------------------------------------- */

static struct bufferevent *make_tls_bev(struct event_base *base, void *arg)
{
	struct web *w = arg;
	SSL *ssl = SSL_new(w->tls);
	if (!ssl)
		return NULL;
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

static evutil_socket_t bind_one(const struct listen_addr *la)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	evutil_socket_t fd;
	int one = 1, rc;

	rc = getaddrinfo(la->host, la->port, &hints, &res);
	if (rc != 0) {
		log_error(NULL, "event=listen_failed service=web address=%s port=%s error=\"%s\"", la->host, la->port,
			  gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0)
		goto fail;
	freeaddrinfo(res);
	return fd;
fail:
	log_error(NULL, "event=listen_failed service=web address=%s port=%s error=\"%s\"", la->host, la->port,
		  strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return -1;
}

static void collect(void *arg)
{
	struct web *w = arg;
	struct store_queue_counts q;
	metric_gauge_set(w->m_uptime, NULL, (int64_t)time(NULL) - w->started);
	/* the queue's size, read at scrape time (one aggregate query) */
	if (w->store && store_queue_counts(w->store, &q) == STORE_OK) {
		metric_gauge_set(w->m_queue_msgs, NULL, q.messages);
		metric_gauge_set(w->m_queue_rcpts, "pending", q.pending);
		metric_gauge_set(w->m_queue_rcpts, "held", q.held);
		metric_gauge_set(w->m_queue_rcpts, "failed", q.failed);
	}
}

struct web *web_new(struct event_base *base, struct runtime *rt)
{
	struct web *w = xcalloc(1, sizeof *w);
	const struct config *c = rt->cfg;

	w->base = base;
	w->rt = rt;
	runtime_ref(rt);
	w->started = (int64_t)time(NULL);
	w->m_logins = metric_counter("postern_web_logins_total", "Dashboard logins by result.", "result",
				     "ok|failed|throttled");
	metric_gauge_set(metric_gauge("postern_build_info", "The running version of postern.", "version", POSTERN_VERSION),
			 POSTERN_VERSION, 1);
	metric_gauge_set(metric_gauge("postern_start_time_seconds", "When the daemon started (Unix time).", NULL, NULL),
			 NULL, w->started);
	/* Registered here: collect() runs under the registry's lock. */
	w->m_uptime = metric_gauge("postern_uptime_seconds", "Seconds since the daemon started.", NULL, NULL);
	w->m_queue_msgs = metric_gauge("postern_queue_messages", "Messages in the outbound queue now.", NULL, NULL);
	w->m_queue_rcpts = metric_gauge("postern_queue_size", "Recipients in the outbound queue now, by state.", "state",
					"pending|held|failed");
	metrics_queue_outcomes();
	metrics_greylist_decisions();
	if (c->nweb_listen == 0) {
		log_info(NULL, "event=web_off hint=\"set [web] listen to serve the dashboard and /metrics\"");
		return w;
	}
	w->http = evhttp_new(base);
	if (!w->http) {
		web_free(w);
		return NULL;
	}
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_max_headers_size(w->http, WEB_MAX_HEADERS);
	evhttp_set_max_body_size(w->http, WEB_MAX_BODY);
	evhttp_set_timeout(w->http, WEB_TIMEOUT_S);
	evhttp_set_gencb(w->http, on_request, w);
	if (!strcasecmp(c->web_tls, "yes")) {
		if (!rt->tls) {
			log_error(NULL, "event=start_failed error=\"[web] tls = yes needs [tls] certificate\"");
			web_free(w);
			return NULL;
		}
		w->tls = rt->tls;
		SSL_CTX_up_ref(w->tls);
		evhttp_set_bevcb(w->http, make_tls_bev, w);
	}
	for (size_t i = 0; i < c->nweb_listen; i++) {
		evutil_socket_t fd = bind_one(&c->web_listen[i]);
		if (fd < 0 || !evhttp_accept_socket_with_handle(w->http, fd)) {
			if (fd >= 0)
				close(fd);
			web_free(w);
			return NULL;
		}
		log_info(NULL, "event=listening service=web address=%s port=%s tls=%s", c->web_listen[i].host,
			 c->web_listen[i].port, w->tls ? "yes" : "no");
	}
	return w;
}

int web_start(struct web *w, struct store *store)
{
	w->store = store;
	if (!w->http)
		return 0;
	w->pool = worker_pool_new(w->base, 1);
	if (!w->pool)
		return -1;
	w->dummy_hash = password_hash("postern-dummy-password-for-timing");
	if (!w->dummy_hash)
		return -1;
	if (cfg_of(w)->nweb_admins == 0)
		log_warn(NULL, "event=web_no_admins hint=\"list mailboxes in [web] admins to log in to the dashboard\"");
	metrics_on_collect(collect, w);
	return 0;
}

void web_set_runtime(struct web *w, struct runtime *rt)
{
	if (!w)
		return;
	runtime_ref(rt);
	runtime_unref(w->rt);
	w->rt = rt;
}

void web_page_add(struct web *w, const char *path, const char *title, web_render_fn fn, void *arg)
{
	if (!w)
		return;
	if (w->npages == WEB_MAX_PAGES || path[0] != '/' || page_find(w, path))
		abort(); /* a bug: too many pages, or one path twice */
	w->pages[w->npages].path = xstrdup(path);
	w->pages[w->npages].title = xstrdup(title);
	w->pages[w->npages].fn = fn;
	w->pages[w->npages].arg = arg;
	w->npages++;
}

void web_free(struct web *w)
{
	if (!w)
		return;
	metrics_remove_collector(collect, w);
	/* Password checks in flight reply first (evhttp is still there). */
	worker_pool_free(w->pool);
	if (w->http)
		evhttp_free(w->http);
	if (w->tls)
		SSL_CTX_free(w->tls);
	for (size_t i = 0; i < w->npages; i++) {
		free(w->pages[i].path);
		free(w->pages[i].title);
	}
	free(w->dummy_hash);
	runtime_unref(w->rt);
	explicit_bzero(w->sessions, sizeof w->sessions);
	free(w);
}

long web_query_long(const struct web_page_ctx *ctx, const char *name, long def, long min, long max)
{
	struct evkeyvalq q;
	const char *query = ctx->req ? evhttp_uri_get_query(evhttp_request_get_evhttp_uri(ctx->req)) : NULL;
	const char *v;
	uint64_t n;
	long out = def;
	if (!query)
		return def;
	if (evhttp_parse_query_str(query, &q) == 0 && (v = evhttp_find_header(&q, name)) &&
	    parse_uint(v, (uint64_t)max, &n) == 0 && (long)n >= min)
		out = (long)n;
	evhttp_clear_headers(&q);
	return out;
}

/*
 * web: the dashboard and /metrics, served over HTTP by libevent's evhttp on
 * the daemon's own event loop (no second process, no thread per client).
 *
 * Trust: the listener is loopback by default ([web] listen) and everything
 * but /login and /metrics needs a session. A session is made by POST /login
 * with the address and mail password of a mailbox listed in [web] admins;
 * the yescrypt check runs on a worker thread of its own, so the event loop
 * never waits tens of milliseconds for it. The session cookie is a random
 * 256-bit token (HttpOnly, SameSite=Strict, Secure under TLS); every POST
 * carries a per-session CSRF token; failed logins are throttled per
 * address; requests are bounded in header and body size and in time; and
 * a Host header that names something other than this host (DNS rebinding)
 * is refused. /metrics is open to loopback clients, to a bearer token
 * ([web] metrics_token) and to a session.
 *
 * Pages: each is one function registered under a path with a title; the
 * frame (navigation, logout button, styles) is drawn around it. A page gets
 * the configuration and the store (both owned by the loop thread, as the
 * page is) and appends HTML to an evbuffer; every value it did not write
 * itself must go through html_escape()/html_printf() (web/html.h).
 */
#ifndef POSTERN_WEB_H
#define POSTERN_WEB_H

#include <stdint.h>

struct evbuffer;
struct evhttp_request;
struct event_base;
struct runtime;
struct store;
struct web;

#define WEB_MAX_PAGES 32

/* What a page may read while it renders (all borrowed). */
struct web_page_ctx {
	const struct config *cfg;
	struct store *store;
	struct evhttp_request *req;
	int64_t now;     /* Unix time */
	int64_t started; /* when the daemon started */
	const char *path;
};

typedef void (*web_render_fn)(struct evbuffer *out, const struct web_page_ctx *ctx, void *arg);

/* Creates the web server and binds [web] listen (call while still root).
 * With no listen address it is off: every call below is then harmless.
 * Returns NULL after logging if an address cannot be bound. Takes a
 * reference on rt. */
struct web *web_new(struct event_base *base, struct runtime *rt);
/* Starts serving; call after dropping privileges. The store is borrowed.
 * Returns 0 or -1. */
int web_start(struct web *w, struct store *store);
/* The configuration for requests from now on (SIGHUP). */
void web_set_runtime(struct web *w, struct runtime *rt);
/* Adds a page (path such as "/status"; title for the navigation); pages
 * appear in the navigation in the order added. arg is passed to fn. */
void web_page_add(struct web *w, const char *path, const char *title, web_render_fn fn, void *arg);
void web_free(struct web *w);

/* A whole-number query argument (?days=30) within [min, max], else def. */
long web_query_long(const struct web_page_ctx *ctx, const char *name, long def, long min, long max);

/* The built-in pages (web/pages.c): status, authentication, doctor,
 * self-tests. */
void web_pages_register(struct web *w);
/* queue, deliverability, reports, graylisting (web/pages_mail.c); called by
 * web_pages_register. */
void web_pages_mail_register(struct web *w);

#endif

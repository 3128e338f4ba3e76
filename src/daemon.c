/*
 * daemon: see daemon.h.
 *
 * Trust level: started as root only to bind privileged ports and to read the
 * TLS key; everything after privs_drop() runs as [server] user, which owns
 * DATA_DIR. Nothing in the process can regain root.
 */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/keyring.h"
#include "config.h"
#include "dns/dns.h"
#include "lib/log.h"
#include "lib/privs.h"
#include "lib/util.h"
#include "net/tls.h"
#include "queue/queue.h"
#include "smtp/server.h"
#include "store/store.h"
#include "web/web.h"

struct daemon {
	const char *config_path;
	struct event_base *base;
	struct server *srv;
	struct web *web;
	struct runtime *rt;
	struct queue *queue; /* NULL: nothing can be sent out */
};

static void apply_log_level(const struct config *cfg)
{
	enum log_level lvl;
	if (log_level_parse(cfg->log_level, &lvl) == 0)
		log_set_level(lvl);
}

/* Builds a runtime from a loaded config; NULL if TLS cannot be set up. */
static struct runtime *make_runtime(struct config *cfg)
{
	SSL_CTX *tls = NULL;
	char err[512];
	if (*cfg->tls_certificate) {
		tls = tls_server_ctx(cfg->tls_certificate, cfg->tls_key, err, sizeof err);
		if (!tls) {
			log_error(NULL, "event=tls_config_error error=\"%s\"", err);
			return NULL;
		}
	} else {
		log_warn(NULL, "event=no_tls hint=\"set [tls] certificate and key to offer STARTTLS\"");
	}
	return runtime_new(cfg, tls);
}

static int same_list(const struct listen_addr *a, size_t na, const struct listen_addr *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i].host, b[i].host) || strcmp(a[i].port, b[i].port))
			return 0;
	return 1;
}

static int same_listen(const struct config *a, const struct config *b)
{
	return same_list(a->smtp_listen, a->nsmtp_listen, b->smtp_listen, b->nsmtp_listen) &&
	       same_list(a->submission_listen, a->nsubmission_listen, b->submission_listen, b->nsubmission_listen) &&
	       same_list(a->submissions_listen, a->nsubmissions_listen, b->submissions_listen, b->nsubmissions_listen) &&
	       same_list(a->web_listen, a->nweb_listen, b->web_listen, b->nweb_listen);
}

/* The DKIM and ARC keys of a loaded config; problems go to the log. */
static int load_keys(struct config *cfg, const char *event)
{
	char *errtext = NULL;
	size_t errlen = 0;
	FILE *err = open_memstream(&errtext, &errlen);
	int rc = config_load_keys(cfg, err);
	fclose(err);
	for (char *save = NULL, *l = strtok_r(errtext, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char v[1024];
		log_error(NULL, "event=%s problem=%s", event, log_value(v, sizeof v, l, strlen(l)));
	}
	free(errtext);
	if (rc == 0 && cfg->dkim_keys)
		for (size_t i = 0; i < cfg->dkim_keys->ndomains; i++)
			log_info(NULL, "event=dkim_keys domain=%s keys=%zu", cfg->dkim_keys->domains[i].domain,
				 cfg->dkim_keys->domains[i].nkeys);
	return rc;
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct config *cfg;
	struct runtime *rt;
	char *errtext = NULL;
	size_t errlen = 0;
	FILE *err = open_memstream(&errtext, &errlen);
	(void)sig;
	(void)what;

	cfg = config_load(d->config_path, err);
	fclose(err);
	if (!cfg) {
		/* One log line per problem, then keep running with the old config. */
		for (char *save = NULL, *l = strtok_r(errtext, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			char v[1024];
			log_error(NULL, "event=reload_error problem=%s", log_value(v, sizeof v, l, strlen(l)));
		}
		log_error(NULL, "event=reload_failed keeping=old_config");
		free(errtext);
		return;
	}
	free(errtext);
	if (load_keys(cfg, "reload_error") < 0) {
		config_free(cfg);
		log_error(NULL, "event=reload_failed keeping=old_config");
		return;
	}
	if (!same_listen(cfg, d->rt->cfg))
		log_warn(NULL, "event=reload_warning hint=\"listen addresses change only on restart\"");
	rt = make_runtime(cfg);
	if (!rt) {
		config_free(cfg);
		log_error(NULL, "event=reload_failed keeping=old_config");
		return;
	}
	apply_log_level(cfg);
	server_set_runtime(d->srv, rt);
	if (d->queue)
		queue_set_config(d->queue, cfg);
	web_set_runtime(d->web, rt);
	runtime_unref(d->rt);
	d->rt = rt;
	log_info(NULL, "event=reloaded config=%s", d->config_path);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	(void)what;
	log_info(NULL, "event=shutdown signal=%s", sig == SIGINT ? "INT" : "TERM");
	queue_shutdown(d->queue);
	server_shutdown(d->srv);
}

/* As root: create DATA_DIR, the spool and MAIL_DIR, owned by the user. */
static int prepare_dirs(const struct config *cfg)
{
	const char *dirs[3];
	char *spool = xasprintf("%s/spool", cfg->data_dir);
	uid_t uid;
	gid_t gid;
	char err[512];
	int rc = 0;

	dirs[0] = cfg->data_dir;
	dirs[1] = spool;
	dirs[2] = cfg->mail_dir;
	if (geteuid() == 0 && privs_lookup(cfg->user, &uid, &gid, err, sizeof err) < 0) {
		fprintf(stderr, "postern: %s\n", err);
		free(spool);
		return -1;
	}
	for (size_t i = 0; i < 3; i++) {
		if (mkdir_p(dirs[i], 0750) < 0) {
			fprintf(stderr, "postern: cannot create %s: %s\n", dirs[i], strerror(errno));
			rc = -1;
			break;
		}
		if (geteuid() == 0 && chown(dirs[i], uid, gid) < 0) {
			fprintf(stderr, "postern: cannot chown %s: %s\n", dirs[i], strerror(errno));
			rc = -1;
			break;
		}
	}
	free(spool);
	return rc;
}

int daemon_serve(const char *config_path)
{
	struct daemon d = { .config_path = config_path };
	struct config *cfg;
	struct store *store = NULL;
	struct dns *dns = NULL;
	struct dns_options dopt;
	struct event *ev_hup = NULL, *ev_term = NULL, *ev_int = NULL;
	char err[512];
	int status = 1;

	cfg = config_load(config_path, stderr);
	if (!cfg)
		return 1;
	/* As root: the key files may belong to the daemon's user only. */
	if (config_load_keys(cfg, stderr) < 0) {
		config_free(cfg);
		return 1;
	}
	apply_log_level(cfg);
	signal(SIGPIPE, SIG_IGN);
	if (prepare_dirs(cfg) < 0) {
		config_free(cfg);
		return 1;
	}
	d.rt = make_runtime(cfg);
	if (!d.rt) {
		config_free(cfg);
		return 1;
	}
	d.base = event_base_new();
	if (!d.base) {
		log_error(NULL, "event=start_failed error=\"event_base_new\"");
		goto out;
	}
	d.srv = server_new(d.base, d.rt);
	if (!d.srv)
		goto out;
	d.web = web_new(d.base, d.rt);
	if (!d.web)
		goto out;
	web_pages_register(d.web);
	if (privs_drop(cfg->user, err, sizeof err) < 0) {
		log_error(NULL, "event=start_failed error=\"%s\"", err);
		goto out;
	}
	store = store_open(cfg->data_dir, err, sizeof err);
	if (!store) {
		log_error(NULL, "event=start_failed error=\"%s\"", err);
		goto out;
	}
	dopt.resolver = cfg->dns_resolver;
	dopt.timeout_ms = cfg->dns_timeout_ms;
	dopt.max_inflight = (unsigned)cfg->dns_max_queries;
	dopt.trust_anchor = cfg->dns_trust_anchor;
	if (*dopt.trust_anchor && access(dopt.trust_anchor, R_OK) < 0) {
		log_warn(NULL, "event=no_dnssec trust_anchor=%s hint=\"install dns-root-data, or set [dns] trust_anchor\"",
			 dopt.trust_anchor);
		dopt.trust_anchor = "";
	}
	dns = dns_new(d.base, &dopt, err, sizeof err);
	if (!dns) {
		log_error(NULL, "event=start_failed error=\"%s\"", err);
		goto out;
	}
	if (server_start(d.srv, store, dns) < 0 || web_start(d.web, store) < 0)
		goto out;
	/* The outbound queue: submission to other domains and alias forwards. */
	d.queue = queue_new(d.base, cfg, store, dns);
	if (!d.queue)
		log_warn(NULL, "event=no_queue hint=\"mail to outside addresses is deferred (451)\"");
	server_set_queue(d.srv, d.queue);
	ev_hup = evsignal_new(d.base, SIGHUP, on_hup, &d);
	ev_term = evsignal_new(d.base, SIGTERM, on_term, &d);
	ev_int = evsignal_new(d.base, SIGINT, on_term, &d);
	evsignal_add(ev_hup, NULL);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	log_info(NULL, "event=started version=%s hostname=%s uid=%d domains=%s", POSTERN_VERSION, cfg->hostname,
		 (int)getuid(), cfg->domains_raw);
	event_base_dispatch(d.base);
	log_info(NULL, "event=stopped");
	status = 0;
out:
	if (ev_hup)
		event_free(ev_hup);
	if (ev_term)
		event_free(ev_term);
	if (ev_int)
		event_free(ev_int);
	if (d.queue)
		queue_shutdown(d.queue);
	server_free(d.srv);
	queue_free(d.queue);
	web_free(d.web);
	dns_free(dns);
	store_close(store);
	runtime_unref(d.rt);
	if (d.base)
		event_base_free(d.base);
	return status;
}

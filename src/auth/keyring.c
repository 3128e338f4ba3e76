/*
 * keyring: see keyring.h.
 */
#include "auth/keyring.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "auth/arc.h"
#include "auth/dkim.h"
#include "lib/util.h"

static void report_f(void (*report)(void *, const char *), void *arg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report_f(void (*report)(void *, const char *), void *arg, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	report(arg, text);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of dir (names only, sorted, no dot files). */
static size_t list_dir(const char *dir, char ***out)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;
	*out = NULL;
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		*out = xrealloc(*out, (n + 1) * sizeof **out);
		(*out)[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	if (n)
		qsort(*out, n, sizeof **out, by_name);
	return n;
}

static void load_domain(struct keyring *k, const char *dir, const char *domain,
			void (*report)(void *, const char *), void *arg)
{
	char *ddir = xasprintf("%s/%s", dir, domain), **names, err[512];
	size_t n = list_dir(ddir, &names);
	struct keyring_domain kd = { .domain = str_lower(xstrdup(domain)) };
	const char *seal_sel = NULL;
	char *seal_sel_buf = NULL, *seal_path = NULL;

	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(names[i]);
		char *path, *sel;
		struct dkim_sign_key *key;
		if (len <= 4 || strcmp(names[i] + len - 4, ".key"))
			continue;
		sel = xstrndup(names[i], len - 4);
		path = xasprintf("%s/%s", ddir, names[i]);
		if (kd.nkeys >= KEYRING_MAX_KEYS) {
			report_f(report, arg, "%s: more than %d keys for %s; remove the old ones", path, KEYRING_MAX_KEYS,
				 domain);
		} else if (!(key = dkim_sign_key_load(kd.domain, sel, path, err, sizeof err))) {
			report_f(report, arg, "cannot use the DKIM key %s: %s; fix it or move it out of %s", path, err,
				 ddir);
		} else {
			kd.keys[kd.nkeys++] = key;
		}
		free(sel);
		free(path);
	}
	/* The sealing key: the first RSA key, else the first key. */
	for (size_t i = 0; i < kd.nkeys && !seal_sel; i++)
		if (!strcmp(dkim_sign_key_algorithm(kd.keys[i]), "rsa-sha256"))
			seal_sel = dkim_sign_key_selector(kd.keys[i]);
	if (!seal_sel && kd.nkeys)
		seal_sel = dkim_sign_key_selector(kd.keys[0]);
	if (seal_sel) {
		seal_sel_buf = xstrdup(seal_sel);
		seal_path = xasprintf("%s/%s.key", ddir, seal_sel_buf);
		kd.seal = arc_sign_key_load(kd.domain, seal_sel_buf, seal_path, err, sizeof err);
		if (!kd.seal)
			report_f(report, arg, "cannot use %s as the ARC sealing key: %s", seal_path, err);
	}
	free(seal_sel_buf);
	free(seal_path);
	if (kd.nkeys) {
		k->domains = xrealloc(k->domains, (k->ndomains + 1) * sizeof *k->domains);
		k->domains[k->ndomains++] = kd;
	} else {
		free(kd.domain);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(ddir);
}

struct keyring *keyring_load(const char *dir, void (*report)(void *arg, const char *text), void *arg)
{
	struct keyring *k = xcalloc(1, sizeof *k);
	char **names;
	size_t n;
	struct stat st;

	if (stat(dir, &st) < 0) {
		if (errno != ENOENT)
			report_f(report, arg, "cannot read the DKIM key directory %s: %s", dir, strerror(errno));
		return k;
	}
	if (!S_ISDIR(st.st_mode)) {
		report_f(report, arg, "the DKIM key directory %s is not a directory; set [dkim] key_dir", dir);
		return k;
	}
	n = list_dir(dir, &names);
	for (size_t i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", dir, names[i]);
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			if (dkim_valid_name(names[i], strlen(names[i])) && strchr(names[i], '.'))
				load_domain(k, dir, names[i], report, arg);
			else
				report_f(report, arg, "%s: '%s' is not a domain name; key directories are named after their domain",
					 path, names[i]);
		}
		free(path);
		free(names[i]);
	}
	free(names);
	return k;
}

const struct keyring_domain *keyring_find(const struct keyring *k, const char *domain)
{
	for (size_t i = 0; k && i < k->ndomains; i++)
		if (!strcasecmp(k->domains[i].domain, domain))
			return &k->domains[i];
	return NULL;
}

void keyring_free(struct keyring *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->ndomains; i++) {
		for (size_t j = 0; j < k->domains[i].nkeys; j++)
			dkim_sign_key_free(k->domains[i].keys[j]);
		arc_sign_key_free(k->domains[i].seal);
		free(k->domains[i].domain);
	}
	free(k->domains);
	free(k);
}

/*
 * cli_selftest: `postern selftest new|list|show`, the self-test addresses
 * and the reports the server keeps for them (src/doctor/selftest.c grades,
 * src/doctor/selftest_store.c keeps). A state command: run as root it has
 * already become [server] user, who owns DATA_DIR/selftest.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "doctor/selftest_store.h"
#include "lib/json.h"
#include "lib/util.h"

#define SELFTEST_MAX_REPORT (1024 * 1024)

void cli_selftest_usage(FILE *out)
{
	fputs("usage: postern [-c FILE] selftest new [--domain D] [--json]\n"
	      "       postern [-c FILE] selftest list [--json]\n"
	      "       postern [-c FILE] selftest show TOKEN [--json]\n"
	      "\n"
	      "Mail sent to a self-test address is graded out of 10 instead of delivered,\n"
	      "the way the public testing services do: SPF, DKIM, DMARC and ARC as\n"
	      "received, reverse DNS and HELO of the sending host, block lists, TLS, and\n"
	      "the header (From, Date, Message-ID, MIME, List-Unsubscribe for bulk mail).\n"
	      "Each deduction comes with its fix. Needs [selftest] enabled = yes.\n"
	      "\n"
	      "new    prints a fresh address, PREFIX-TOKEN@DOMAIN ([selftest] prefix; the\n"
	      "       first of [server] domains unless --domain); send a message to it\n"
	      "       from the account you want to test\n"
	      "list   the reports kept, newest first: token, time, score, sender\n"
	      "show   one report: the score, each deduction and its fix, what passed\n"
	      "\n"
	      "The report is also mailed back to the sender when [selftest] reply = yes\n"
	      "and SPF or DMARC passed for the sender.\n",
	      out);
}

/* Reads DIR/NAME whole (bounded); NULL when missing. */
static char *read_small(const char *dir, const char *name, size_t *len)
{
	char *path = xasprintf("%s/%s", dir, name), *buf = NULL;
	FILE *f = fopen(path, "r");
	size_t n = 0;
	free(path);
	if (!f)
		return NULL;
	buf = xmalloc(SELFTEST_MAX_REPORT + 1);
	n = fread(buf, 1, SELFTEST_MAX_REPORT, f);
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

struct report {
	char token[SELFTEST_TOKEN_MAX + 1];
	time_t mtime;
};

static int newest_first(const void *a, const void *b)
{
	const struct report *x = a, *y = b;
	return x->mtime < y->mtime ? 1 : x->mtime > y->mtime ? -1 : strcmp(x->token, y->token);
}

static int cmd_list(const struct config *cfg, int json)
{
	char *dir = selftest_dir(cfg->data_dir);
	DIR *d = opendir(dir);
	struct dirent *de;
	struct report *v = NULL;
	size_t n = 0;

	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct stat st;
		char *p;
		if (len < 6 || strcmp(de->d_name + len - 5, ".json") || !selftest_token_valid(de->d_name, len - 5))
			continue;
		p = xasprintf("%s/%s", dir, de->d_name);
		if (stat(p, &st) == 0) {
			v = xrealloc(v, (n + 1) * sizeof *v);
			memcpy(v[n].token, de->d_name, len - 5);
			v[n].token[len - 5] = '\0';
			v[n].mtime = st.st_mtime;
			n++;
		}
		free(p);
	}
	if (d)
		closedir(d);
	if (n)
		qsort(v, n, sizeof *v, newest_first);
	if (json)
		printf("[");
	for (size_t i = 0; i < n; i++) {
		char name[SELFTEST_TOKEN_MAX + 8], when[32], err[128];
		size_t len;
		char *text;
		struct json *j;
		struct tm tm;
		snprintf(name, sizeof name, "%s.json", v[i].token);
		text = read_small(dir, name, &len);
		j = text ? json_parse(text, len, err, sizeof err) : NULL;
		gmtime_r(&v[i].mtime, &tm);
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (json) {
			printf("%s\n {\"token\": ", i ? "," : "");
			json_write_string(stdout, v[i].token);
			printf(", \"time\": \"%s\", \"score\": %.1f, \"from\": ", when, json_num(json_get(j, "score"), -1));
			json_write_string(stdout, json_str(json_get(json_get(j, "facts"), "envelope_from")));
			printf(", \"client_ip\": ");
			json_write_string(stdout, json_str(json_get(json_get(j, "facts"), "client_ip")));
			printf("}");
		} else {
			const char *from = json_str(json_get(json_get(j, "facts"), "envelope_from"));
			printf("%-20s %s  %4.1f/10  <%s>\n", v[i].token, when, json_num(json_get(j, "score"), -1),
			       from ? from : "");
		}
		json_free(j);
		free(text);
	}
	if (json)
		printf("%s]\n", n ? "\n" : "");
	else if (!n)
		printf("no self-test reports yet; `postern selftest new` gives an address to send to\n");
	free(v);
	free(dir);
	return 0;
}

static int cmd_show(const struct config *cfg, const char *token, int json)
{
	char *dir = selftest_dir(cfg->data_dir), name[SELFTEST_TOKEN_MAX + 8], *text;
	int rc = 0;
	if (!selftest_token_valid(token, strlen(token))) {
		fprintf(stderr, "postern selftest: %s is not a token (4 to 64 lower-case letters and digits)\n", token);
		free(dir);
		return 2;
	}
	snprintf(name, sizeof name, "%s.%s", token, json ? "json" : "txt");
	text = read_small(dir, name, NULL);
	if (!text) {
		fprintf(stderr, "postern selftest: no report for %s (nothing received at that address yet?)\n", token);
		rc = 1;
	} else {
		fputs(text, stdout);
	}
	free(text);
	free(dir);
	return rc;
}

int cli_selftest(const struct config *cfg, int argc, char **argv)
{
	int json = 0;
	const char *domain = NULL, *arg = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--domain") && i + 1 < argc)
			domain = argv[++i];
		else if (argv[i][0] == '-') {
			fprintf(stderr, "postern selftest: unknown option %s\n\n", argv[i]);
			cli_selftest_usage(stderr);
			return 2;
		} else if (!arg)
			arg = argv[i];
		else {
			cli_selftest_usage(stderr);
			return 2;
		}
	}
	if (!strcmp(argv[0], "new") && !arg) {
		char token[SELFTEST_TOKEN_MAX + 1];
		if (!domain && cfg->ndomains)
			domain = cfg->domains[0];
		if (!domain) {
			fprintf(stderr, "postern selftest: no domain: give --domain or set [server] domains\n");
			return 2;
		}
		if (strcmp(cfg->selftest_enabled, "yes"))
			fprintf(stderr, "postern selftest: warning: [selftest] enabled = no; the server will not grade "
					"mail to this address\n");
		selftest_new_token(token);
		if (json) {
			char *addr = xasprintf("%s%s@%s", cfg->selftest_prefix, token, domain);
			printf("{\"address\": ");
			json_write_string(stdout, addr);
			printf(", \"token\": \"%s\"}\n", token);
			free(addr);
		} else {
			printf("%s%s@%s\n", cfg->selftest_prefix, token, domain);
		}
		return 0;
	}
	if (!strcmp(argv[0], "list") && !arg)
		return cmd_list(cfg, json);
	if (!strcmp(argv[0], "show") && arg)
		return cmd_show(cfg, arg, json);
	cli_selftest_usage(stderr);
	return 2;
}

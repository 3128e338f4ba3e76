/*
 * mtasts: see mtasts.h. RFC 8461 sections 3.1 (the TXT record), 3.2 (the
 * policy), 3.3 (fetching it) and 4.1 (MX host matching).
 */
#include "deliver/mtasts.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "lib/util.h"

#ifndef POSTERN_VERSION
#define POSTERN_VERSION "dev"
#endif

const char *mtasts_mode_name(enum mtasts_mode m)
{
	return m == MTASTS_ENFORCE ? "enforce" : m == MTASTS_TESTING ? "testing" : "none";
}

static void say(char *why, size_t n, const char *s)
{
	if (why && n)
		snprintf(why, n, "%s", s);
}

/* ---- the TXT record (section 3.1) -------------------------------------- */

static int is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

int mtasts_record_parse(const char *txt, size_t len, char *id, size_t idsize, char *why, size_t whysize)
{
	size_t i = 0;
	int first = 1, have_id = 0;
	if (idsize)
		id[0] = '\0';
	while (i < len) {
		size_t ks, ke, vs, ve;
		while (i < len && is_wsp(txt[i]))
			i++;
		if (i == len)
			break;
		ks = i;
		while (i < len && (isalnum((unsigned char)txt[i]) || txt[i] == '_' || txt[i] == '-' || txt[i] == '.'))
			i++;
		ke = i;
		if (ke == ks || i == len || txt[i] != '=') {
			say(why, whysize, "malformed field (want key=value; ...)");
			return -1;
		}
		vs = ++i;
		while (i < len && txt[i] != ';')
			i++;
		ve = i;
		while (ve > vs && is_wsp(txt[ve - 1]))
			ve--;
		if (i < len)
			i++; /* the ';' */
		for (size_t k = vs; k < ve; k++)
			if ((unsigned char)txt[k] < 0x21 || (unsigned char)txt[k] > 0x7e || txt[k] == '=') {
				say(why, whysize, "invalid character in a value");
				return -1;
			}
		if (first) {
			if (!(ke - ks == 1 && txt[ks] == 'v' && ve - vs == 5 && !memcmp(txt + vs, "STSv1", 5))) {
				say(why, whysize, "not an STSv1 record (v=STSv1 must come first)");
				return -1;
			}
			first = 0;
			continue;
		}
		if (ke - ks == 2 && !memcmp(txt + ks, "id", 2)) {
			size_t n = ve - vs;
			if (n == 0 || n > MTASTS_ID_MAX) {
				say(why, whysize, "id= must be 1 to 32 letters and digits");
				return -1;
			}
			for (size_t k = vs; k < ve; k++)
				if (!isalnum((unsigned char)txt[k])) {
					say(why, whysize, "id= must be 1 to 32 letters and digits");
					return -1;
				}
			if (n + 1 > idsize) {
				say(why, whysize, "id= too long");
				return -1;
			}
			memcpy(id, txt + vs, n);
			id[n] = '\0';
			have_id = 1;
		}
	}
	if (first) {
		say(why, whysize, "empty record");
		return -1;
	}
	if (!have_id) {
		say(why, whysize, "no id= in the record");
		return -1;
	}
	return 0;
}

/* ---- the policy (section 3.2) ------------------------------------------ */

static int valid_pattern(const char *p)
{
	size_t n = strlen(p);
	if (n == 0 || n > 253)
		return 0;
	if (!strncmp(p, "*.", 2))
		p += 2;
	if (!*p || *p == '.' || p[strlen(p) - 1] == '.')
		return 0;
	for (; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '.' || *p == '_'))
			return 0;
	return 1;
}

int mtasts_policy_parse(const char *text, size_t len, struct mtasts_policy *out, char *why, size_t whysize)
{
	size_t i = 0;
	int have_version = 0, have_mode = 0, have_age = 0;
	memset(out, 0, sizeof *out);
	if (len > MTASTS_MAX_POLICY) {
		say(why, whysize, "policy larger than 64 KiB");
		return -1;
	}
	while (i < len) {
		size_t ls = i, le, colon, ks, ke, vs, ve;
		while (i < len && text[i] != '\n')
			i++;
		le = i;
		if (i < len)
			i++;
		if (le > ls && text[le - 1] == '\r')
			le--;
		if (le == ls)
			continue; /* an empty line, e.g. at the end */
		for (colon = ls; colon < le && text[colon] != ':'; colon++)
			;
		if (colon == le) {
			say(why, whysize, "a line without ':' (want key: value)");
			goto bad;
		}
		ks = ls;
		ke = colon;
		vs = colon + 1;
		ve = le;
		while (vs < ve && is_wsp(text[vs]))
			vs++;
		while (ve > vs && is_wsp(text[ve - 1]))
			ve--;
		for (size_t k = ls; k < le; k++)
			if (text[k] == '\0' || text[k] == '\r') {
				say(why, whysize, "control character in the policy");
				goto bad;
			}
#define KEY(s) (ke - ks == sizeof(s) - 1 && !memcmp(text + ks, s, sizeof(s) - 1))
#define VAL(s) (ve - vs == sizeof(s) - 1 && !memcmp(text + vs, s, sizeof(s) - 1))
		if (KEY("version")) {
			if (!VAL("STSv1")) {
				say(why, whysize, "version is not STSv1");
				goto bad;
			}
			have_version = 1;
		} else if (KEY("mode")) {
			if (VAL("enforce"))
				out->mode = MTASTS_ENFORCE;
			else if (VAL("testing"))
				out->mode = MTASTS_TESTING;
			else if (VAL("none"))
				out->mode = MTASTS_NONE;
			else {
				say(why, whysize, "mode is not enforce, testing or none");
				goto bad;
			}
			have_mode = 1;
		} else if (KEY("max_age")) {
			unsigned long long v = 0;
			if (ve == vs || ve - vs > 10) {
				say(why, whysize, "max_age is not a number of seconds");
				goto bad;
			}
			for (size_t k = vs; k < ve; k++) {
				if (!isdigit((unsigned char)text[k])) {
					say(why, whysize, "max_age is not a number of seconds");
					goto bad;
				}
				v = v * 10 + (unsigned)(text[k] - '0');
			}
			out->max_age = v > MTASTS_MAX_AGE ? MTASTS_MAX_AGE : (uint32_t)v;
			have_age = 1;
		} else if (KEY("mx")) {
			char *pat = xmalloc(ve - vs + 1);
			for (size_t k = 0; k < ve - vs; k++)
				pat[k] = (char)tolower((unsigned char)text[vs + k]);
			pat[ve - vs] = '\0';
			if (!valid_pattern(pat)) {
				free(pat);
				say(why, whysize, "an mx: line is not a host name or *.domain pattern");
				goto bad;
			}
			if (out->nmx == MTASTS_MAX_MX) {
				free(pat);
				say(why, whysize, "more than 64 mx: lines");
				goto bad;
			}
			out->mx = xrealloc(out->mx, (out->nmx + 1) * sizeof *out->mx);
			out->mx[out->nmx++] = pat;
		}
		/* Other keys: ignored (section 3.2, for extensions). */
#undef KEY
#undef VAL
	}
	if (!have_version || !have_mode || !have_age) {
		say(why, whysize, !have_version ? "no version: line" : !have_mode ? "no mode: line" : "no max_age: line");
		goto bad;
	}
	if (out->mode != MTASTS_NONE && out->nmx == 0) {
		say(why, whysize, "no mx: line");
		goto bad;
	}
	return 0;
bad:
	mtasts_policy_clear(out);
	return -1;
}

void mtasts_policy_clear(struct mtasts_policy *p)
{
	for (size_t i = 0; i < p->nmx; i++)
		free(p->mx[i]);
	free(p->mx);
	memset(p, 0, sizeof *p);
}

int mtasts_mx_match(const struct mtasts_policy *p, const char *mx_host)
{
	size_t n = strlen(mx_host);
	if (n && mx_host[n - 1] == '.')
		n--;
	for (size_t i = 0; i < p->nmx; i++) {
		const char *pat = p->mx[i];
		if (!strncmp(pat, "*.", 2)) {
			/* Exactly one label before the rest. */
			const char *dot = memchr(mx_host, '.', n);
			size_t rest;
			if (!dot || dot == mx_host)
				continue;
			rest = n - (size_t)(dot + 1 - mx_host);
			if (rest == strlen(pat + 2) && !strncasecmp(dot + 1, pat + 2, rest))
				return 1;
		} else if (strlen(pat) == n && !strncasecmp(mx_host, pat, n)) {
			return 1;
		}
	}
	return 0;
}

/* ---- fetching (section 3.3) -------------------------------------------- */

struct body {
	char *data;
	size_t len;
	int too_big;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;
	if (b->len + n > MTASTS_MAX_POLICY) {
		b->too_big = 1;
		return 0; /* aborts the transfer */
	}
	b->data = xrealloc(b->data, b->len + n + 1);
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int mtasts_fetch(const char *domain, const char *connect_addr, const char *ca_file, long timeout_ms, char **body,
		 size_t *len, char *why, size_t whysize)
{
	char url[600], pin[700];
	struct curl_slist *resolve = NULL;
	struct body b = { 0 };
	CURL *c;
	CURLcode rc;
	long status = 0;
	int ret = -1;

	*body = NULL;
	*len = 0;
	pthread_once(&curl_once, curl_init);
	if (strlen(domain) > 255) {
		say(why, whysize, "domain too long");
		return -1;
	}
	snprintf(url, sizeof url, "https://mta-sts.%s/.well-known/mta-sts.txt", domain);
	c = curl_easy_init();
	if (!c) {
		say(why, whysize, "cannot start libcurl");
		return -1;
	}
	if (connect_addr) {
		snprintf(pin, sizeof pin, "mta-sts.%s:443:%s%s%s", domain, strchr(connect_addr, ':') ? "[" : "",
			 connect_addr, strchr(connect_addr, ':') ? "]" : "");
		resolve = curl_slist_append(NULL, pin);
		curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "postern/" POSTERN_VERSION);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE, (long)MTASTS_MAX_POLICY);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (b.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		say(why, whysize, "the policy is larger than 64 KiB");
	} else if (rc != CURLE_OK) {
		snprintf(why, whysize, "%s: %s", url, curl_easy_strerror(rc));
	} else if (status >= 300 && status < 400) {
		snprintf(why, whysize, "%s answered a redirect (HTTP %ld), which RFC 8461 3.3 forbids following", url,
			 status);
	} else if (status != 200) {
		snprintf(why, whysize, "%s answered HTTP %ld", url, status);
	} else {
		*body = b.data ? b.data : xstrdup("");
		*len = b.len;
		b.data = NULL;
		ret = 0;
	}
	free(b.data);
	curl_slist_free_all(resolve);
	curl_easy_cleanup(c);
	return ret;
}

/*
 * sasl: see sasl.h.
 */
#include "smtp/sasl.h"

#include <string.h>
#include <strings.h>

/* Decoding scratch: the longest PLAIN message is authzid, authcid and
 * password with their two NULs. */
#define SASL_DECODED_MAX (2 * SASL_MAX_USER + SASL_MAX_PASSWORD + 2)

enum sasl_mech sasl_parse_auth(const char *arg, const char **initial)
{
	size_t n = strcspn(arg, " ");
	enum sasl_mech m;

	*initial = NULL;
	if (n == 0)
		return SASL_MECH_INVALID;
	if (n == 5 && !strncasecmp(arg, "PLAIN", 5))
		m = SASL_MECH_PLAIN;
	else if (n == 5 && !strncasecmp(arg, "LOGIN", 5))
		m = SASL_MECH_LOGIN;
	else
		m = SASL_MECH_UNKNOWN;
	if (arg[n] == ' ') {
		const char *r = arg + n + 1;
		if (!*r || strchr(r, ' '))
			return SASL_MECH_INVALID;
		*initial = r;
	}
	return m;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long sasl_b64_decode(const char *in, size_t len, char *out, size_t outsize)
{
	size_t o = 0;

	if (outsize == 0)
		return -2;
	if (len == 1 && in[0] == '=') {
		out[0] = '\0';
		return 0;
	}
	if (len % 4)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;
		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];
			if (c == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad) /* data after '=' */
				return -1;
			v[k] = b64_value(c);
			if (v[k] < 0)
				return -1;
		}
		/* The bits a padded quantum drops must be zero (RFC 4648 3.5). */
		if ((pad == 2 && (v[1] & 0x0f)) || (pad == 1 && (v[2] & 0x03)))
			return -1;
		if (o + (size_t)(3 - pad) + 1 > outsize)
			return -2;
		out[o++] = (char)((v[0] << 2) | (v[1] >> 4));
		if (pad < 2)
			out[o++] = (char)(((v[1] & 0x0f) << 4) | (v[2] >> 2));
		if (pad < 1)
			out[o++] = (char)(((v[2] & 0x03) << 6) | v[3]);
	}
	out[o] = '\0';
	return (long)o;
}

void sasl_b64_encode(const char *in, size_t n, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)(unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)(unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = '\0';
}

/* A user name: printable, no space (an address). */
static int user_ok(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == 0x7f)
			return 0;
	}
	return 1;
}

static enum sasl_status decode(const char *response, char *buf, size_t bufsize, long *len)
{
	size_t rl = strlen(response);
	if (!strcmp(response, "*"))
		return SASL_CANCELLED;
	/* Longer than any acceptable message could encode to. */
	if (rl > 4 * ((bufsize + 2) / 3) + 4)
		return SASL_TOO_LONG;
	*len = sasl_b64_decode(response, rl, buf, bufsize);
	if (*len == -2)
		return SASL_TOO_LONG;
	if (*len < 0)
		return SASL_BAD_BASE64;
	return SASL_OK;
}

enum sasl_status sasl_plain(const char *response, struct sasl_creds *c)
{
	char buf[SASL_DECODED_MAX + 1];
	const char *nul1, *nul2, *end;
	size_t zl, ul, pl;
	long len = 0;
	enum sasl_status st;

	memset(c, 0, sizeof *c);
	st = decode(response, buf, sizeof buf, &len);
	if (st != SASL_OK)
		goto out;
	end = buf + len;
	nul1 = memchr(buf, '\0', (size_t)len);
	nul2 = nul1 ? memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1)) : NULL;
	if (!nul1 || !nul2 || memchr(nul2 + 1, '\0', (size_t)(end - nul2 - 1))) {
		st = SASL_BAD_MESSAGE;
		goto out;
	}
	zl = (size_t)(nul1 - buf);
	ul = (size_t)(nul2 - nul1 - 1);
	pl = (size_t)(end - nul2 - 1);
	if (zl > SASL_MAX_USER || ul > SASL_MAX_USER || pl > SASL_MAX_PASSWORD) {
		st = SASL_TOO_LONG;
		goto out;
	}
	if ((zl && !user_ok(buf, zl)) || !user_ok(nul1 + 1, ul) || pl == 0) {
		st = SASL_BAD_MESSAGE;
		goto out;
	}
	memcpy(c->authzid, buf, zl);
	memcpy(c->user, nul1 + 1, ul);
	memcpy(c->password, nul2 + 1, pl);
out:
	explicit_bzero(buf, sizeof buf);
	if (st != SASL_OK)
		sasl_creds_wipe(c);
	return st;
}

enum sasl_status sasl_login_answer(const char *response, int is_user, char *out, size_t outsize)
{
	char buf[SASL_MAX_PASSWORD + 2];
	size_t max = is_user ? SASL_MAX_USER : SASL_MAX_PASSWORD;
	long len = 0;
	enum sasl_status st;

	if (outsize)
		out[0] = '\0';
	st = decode(response, buf, sizeof buf, &len);
	if (st == SASL_OK) {
		if ((size_t)len > max || (size_t)len + 1 > outsize)
			st = SASL_TOO_LONG;
		else if (memchr(buf, '\0', (size_t)len) || len == 0 || (is_user && !user_ok(buf, (size_t)len)))
			st = SASL_BAD_MESSAGE;
		else
			memcpy(out, buf, (size_t)len + 1);
	}
	explicit_bzero(buf, sizeof buf);
	return st;
}

void sasl_creds_wipe(struct sasl_creds *c)
{
	explicit_bzero(c, sizeof *c);
}

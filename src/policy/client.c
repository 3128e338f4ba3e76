/*
 * policy/client: see client.h.
 */
#include "policy/client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "lib/util.h"

int policy_reverse_name(const char *ip, const char *suffix, char *out, size_t n)
{
	unsigned char a[16];
	size_t o = 0;
	int w;

	if (strchr(ip, ':')) {
		static const char hex[] = "0123456789abcdef";
		if (inet_pton(AF_INET6, ip, a) != 1 || n < 64 + 1)
			return -1;
		for (int i = 15; i >= 0; i--) {
			out[o++] = hex[a[i] & 15];
			out[o++] = '.';
			out[o++] = hex[a[i] >> 4];
			out[o++] = '.';
		}
		w = snprintf(out + o, n - o, "%s", suffix ? suffix : "ip6.arpa");
	} else {
		if (inet_pton(AF_INET, ip, a) != 1)
			return -1;
		w = snprintf(out, n, "%u.%u.%u.%u.%s", a[3], a[2], a[1], a[0], suffix ? suffix : "in-addr.arpa");
		o = 0;
	}
	return w < 0 || (size_t)w >= n - o ? -1 : 0;
}

int policy_same_ip(const char *a, const char *b)
{
	unsigned char x[16], y[16];
	int fa = strchr(a, ':') ? AF_INET6 : AF_INET, fb = strchr(b, ':') ? AF_INET6 : AF_INET;
	if (fa != fb || inet_pton(fa, a, x) != 1 || inet_pton(fb, b, y) != 1)
		return 0;
	return !memcmp(x, y, fa == AF_INET ? 4 : 16);
}

static int fqdn(const char *s)
{
	size_t label = 0, dots = 0, len = strlen(s);
	const char *start = s;
	if (len == 0 || len > 253)
		return 0;
	if (s[len - 1] == '.')
		len--; /* one trailing dot is allowed */
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			dots++;
			start = s + i + 1;
		} else if (isalnum((unsigned char)c) || (c == '-' && s + i != start)) {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	if (label == 0 || s[len - 1] == '-' || dots == 0)
		return 0;
	/* The last label of a real name is not all digits (1.2.3.4 is no name). */
	for (const char *p = start; p < s + len; p++)
		if (!isdigit((unsigned char)*p))
			return 1;
	return 0;
}

enum helo_kind policy_helo_kind(const char *helo, char *addr, size_t n)
{
	size_t len = strlen(helo);
	unsigned char tmp[16];
	char buf[64];

	if (len >= 3 && helo[0] == '[' && helo[len - 1] == ']') {
		const char *in = helo + 1;
		size_t il = len - 2;
		int fam = AF_INET;
		if (il > 5 && !strncasecmp(in, "IPv6:", 5)) {
			in += 5;
			il -= 5;
			fam = AF_INET6;
		}
		if (il == 0 || il >= sizeof buf)
			return HELO_BAD;
		memcpy(buf, in, il);
		buf[il] = '\0';
		if (inet_pton(fam, buf, tmp) != 1)
			return HELO_BAD;
		str_copy(addr, buf, n);
		return HELO_LITERAL;
	}
	return fqdn(helo) ? HELO_NAME : HELO_BAD;
}

int policy_helo_is_ours(const char *helo, const struct config *c, const char *local_ip, const char *client_ip)
{
	char addr[64], name[256];
	size_t len;
	switch (policy_helo_kind(helo, addr, sizeof addr)) {
	case HELO_LITERAL:
		if (local_ip && *local_ip && policy_same_ip(addr, local_ip))
			return 1;
		if (!strchr(client_ip, ':') ? strncmp(client_ip, "127.", 4) != 0 : strcmp(client_ip, "::1") != 0) {
			/* A loopback literal from a client that is not on loopback. */
			if (!strncmp(addr, "127.", 4) || !strcmp(addr, "::1"))
				return 1;
		}
		return 0;
	case HELO_NAME:
		len = str_copy(name, helo, sizeof name);
		if (len && name[len - 1] == '.')
			name[len - 1] = '\0';
		if (!strcasecmp(name, c->hostname))
			return 1;
		for (size_t i = 0; i < c->ndomains; i++)
			if (!strcasecmp(name, c->domains[i]))
				return 1;
		return 0;
	default:
		return 0;
	}
}

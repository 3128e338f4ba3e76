/*
 * cmd: see cmd.h. The grammar is RFC 5321 section 4.1.2:
 *
 *   Path       = "<" [ A-d-l ":" ] Mailbox ">"
 *   Mailbox    = Local-part "@" ( Domain / address-literal )
 *   Local-part = Dot-string / Quoted-string
 *
 * extended by RFC 6531 section 3.3 (UTF-8 in atext and sub-domains). We
 * accept "FROM: <x>" (a space after the colon), as most servers do, and
 * nothing laxer: no path without angle brackets.
 */
#include "cmd.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "EHLO", VERB_EHLO }, { "HELO", VERB_HELO }, { "MAIL", VERB_MAIL }, { "RCPT", VERB_RCPT },
	{ "DATA", VERB_DATA }, { "BDAT", VERB_BDAT }, { "RSET", VERB_RSET }, { "NOOP", VERB_NOOP },
	{ "QUIT", VERB_QUIT }, { "HELP", VERB_HELP }, { "VRFY", VERB_VRFY }, { "EXPN", VERB_EXPN },
	{ "STARTTLS", VERB_STARTTLS }, { "AUTH", VERB_AUTH },
};

enum smtp_verb cmd_verb(const char *line, const char **arg)
{
	size_t n = 0;
	while (line[n] && line[n] != ' ')
		n++;
	*arg = line + n;
	while (**arg == ' ')
		(*arg)++;
	for (size_t i = 0; i < ARRAY_LEN(verbs); i++)
		if (strlen(verbs[i].name) == n && !strncasecmp(line, verbs[i].name, n))
			return verbs[i].verb;
	return VERB_UNKNOWN;
}

const char *cmd_verb_name(enum smtp_verb verb)
{
	for (size_t i = 0; i < ARRAY_LEN(verbs); i++)
		if (verbs[i].verb == verb)
			return verbs[i].name;
	return "UNKNOWN";
}

int cmd_has_8bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* RFC 5322 atext, plus UTF-8 bytes when utf8 (RFC 6531 section 3.3). */
static int is_atext(unsigned char c, int utf8)
{
	if (c >= 0x80)
		return utf8;
	return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Checks that s[0..n) is valid UTF-8 (no overlongs, no surrogates). */
static int valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t len;
		unsigned cp;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4, cp = c & 0x07;
		else
			return 0;
		if (i + len > n)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
		i += len;
	}
	return 1;
}

/* Dot-string: Atom *("." Atom). */
static int is_dot_string(const char *s, size_t n, int utf8)
{
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return 0;
		} else if (!is_atext((unsigned char)s[i], utf8)) {
			return 0;
		}
	}
	return 1;
}

/* Domain = sub-domain *("." sub-domain), each a letter-digit-hyphen label
 * (or a UTF-8 U-label with utf8), or an address literal. */
static int is_domain(const char *s, size_t n, int utf8)
{
	size_t label = 0;
	if (n == 0 || n > SMTP_MAX_DOMAIN)
		return 0;
	if (s[0] == '[') {
		char lit[SMTP_MAX_DOMAIN + 1];
		unsigned char tmp[16];
		if (s[n - 1] != ']' || n < 3)
			return 0;
		memcpy(lit, s + 1, n - 2);
		lit[n - 2] = '\0';
		if (!strncasecmp(lit, "IPv6:", 5))
			return inet_pton(AF_INET6, lit + 5, tmp) == 1;
		return inet_pton(AF_INET, lit, tmp) == 1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (c == '-' && label == 0)
			return 0;
		if (!(isalnum(c) || c == '-' || (c >= 0x80 && utf8)))
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

/* Quoted-string: DQUOTE *QcontentSMTP DQUOTE. Writes the unquoted content
 * into out (which has room for n bytes); returns its length or -1. */
static long unquote(const char *s, size_t n, int utf8, char *out)
{
	size_t o = 0;
	if (n < 2 || s[0] != '"' || s[n - 1] != '"')
		return -1;
	for (size_t i = 1; i < n - 1; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\\') {
			if (++i >= n - 1)
				return -1;
			c = (unsigned char)s[i];
			if (c < 32 || c > 126)
				return -1;
		} else if (c == '"' || c < 32 || c == 127 || (c >= 0x80 && !utf8)) {
			return -1;
		}
		out[o++] = (char)c;
	}
	return (long)o;
}

enum path_status cmd_parse_path(const char *s, int allow_null, int utf8, char *out, size_t outsize,
				const char **rest)
{
	const char *end, *mbox, *at = NULL;
	int quoted = 0;
	size_t len, llen, dlen;
	char local[SMTP_MAX_PATH + 1];
	long ul;

	if (*s != '<')
		return PATH_SYNTAX;
	s++;
	/* Find the closing '>' outside a quoted string. */
	for (end = s; *end; end++) {
		if (*end == '>' && !quoted)
			break;
		if (*end == '"')
			quoted = !quoted;
		else if (*end == '\\' && quoted && end[1])
			end++;
	}
	if (*end != '>' || quoted)
		return PATH_SYNTAX;
	len = (size_t)(end - s);
	*rest = end + 1;
	if (len == 0) {
		if (!allow_null)
			return PATH_SYNTAX;
		if (outsize)
			out[0] = '\0';
		return PATH_OK;
	}
	if (len > SMTP_MAX_PATH)
		return PATH_SYNTAX;
	mbox = s;
	if (*s == '@') {
		/* A-d-l: @domain *("," @domain) ":" -- validated, then dropped. */
		const char *colon = memchr(s, ':', len);
		const char *p = s;
		if (!colon)
			return PATH_SYNTAX;
		while (p < colon) {
			const char *comma;
			if (*p != '@')
				return PATH_SYNTAX;
			p++;
			comma = memchr(p, ',', (size_t)(colon - p));
			if (!comma)
				comma = colon;
			if (!is_domain(p, (size_t)(comma - p), utf8))
				return PATH_SYNTAX;
			p = comma == colon ? colon : comma + 1;
		}
		mbox = colon + 1;
		len = (size_t)(end - mbox);
	}
	/* The '@' separating local part and domain: the last one outside quotes. */
	quoted = 0;
	for (const char *p = mbox; p < end; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '\\' && quoted)
			p++;
		else if (*p == '@' && !quoted)
			at = at ? (const char *)-1 : p;
	}
	if (!at || at == (const char *)-1)
		return PATH_SYNTAX;
	llen = (size_t)(at - mbox);
	dlen = (size_t)(end - at - 1);
	if (llen == 0 || llen > SMTP_MAX_PATH)
		return PATH_SYNTAX;
	if (!is_domain(at + 1, dlen, 1))
		return PATH_SYNTAX;
	if (mbox[0] == '"') {
		ul = unquote(mbox, llen, 1, local);
		if (ul < 0)
			return PATH_SYNTAX;
	} else {
		if (!is_dot_string(mbox, llen, 1))
			return PATH_SYNTAX;
		memcpy(local, mbox, llen);
		ul = (long)llen;
	}
	local[ul] = '\0';
	if (llen > SMTP_MAX_LOCALPART && !cmd_has_8bit(local))
		return PATH_SYNTAX;
	if (!valid_utf8((const unsigned char *)mbox, (size_t)(end - mbox)))
		return PATH_SYNTAX;
	if (!utf8) {
		for (size_t i = 0; i < dlen; i++)
			if ((unsigned char)at[1 + i] >= 0x80)
				return PATH_NEEDS_UTF8;
		if (cmd_has_8bit(local))
			return PATH_NEEDS_UTF8;
	}
	/* Canonical form: quotes only when the local part needs them. */
	{
		char buf[2 * SMTP_MAX_PATH + 8];
		size_t o = 0;
		if (is_dot_string(local, (size_t)ul, 1)) {
			memcpy(buf, local, (size_t)ul);
			o = (size_t)ul;
		} else {
			buf[o++] = '"';
			for (long i = 0; i < ul; i++) {
				if (local[i] == '"' || local[i] == '\\')
					buf[o++] = '\\';
				buf[o++] = local[i];
			}
			buf[o++] = '"';
		}
		buf[o++] = '@';
		for (size_t i = 0; i < dlen; i++)
			buf[o++] = (char)tolower((unsigned char)at[1 + i]);
		buf[o] = '\0';
		if (o + 1 > outsize)
			return PATH_SYNTAX;
		memcpy(out, buf, o + 1);
	}
	return PATH_OK;
}

/* Iterates over space-separated "KEY[=VALUE]" parameters. */
static const char *next_param(const char *s, char *key, size_t keysize, char *val, size_t valsize, int *has_val)
{
	size_t k = 0, v = 0;
	while (*s == ' ')
		s++;
	if (!*s)
		return NULL;
	*has_val = 0;
	while (*s && *s != ' ' && *s != '=') {
		if (k + 1 < keysize)
			key[k++] = *s;
		s++;
	}
	key[k] = '\0';
	if (*s == '=') {
		*has_val = 1;
		s++;
		while (*s && *s != ' ') {
			if (v + 1 < valsize)
				val[v++] = *s;
			s++;
		}
	}
	val[v] = '\0';
	return s;
}

enum param_status cmd_parse_mail_params(const char *s, struct mail_params *out)
{
	char key[32], val[64];
	int has_val;
	memset(out, 0, sizeof *out);
	if (*s && *s != ' ')
		return PARAM_SYNTAX;
	while ((s = next_param(s, key, sizeof key, val, sizeof val, &has_val))) {
		if (!key[0])
			return PARAM_SYNTAX;
		if (!strcasecmp(key, "SIZE")) {
			/* RFC 1870 allows 20 digits: a number past 64 bits is valid
			 * and simply too big. */
			size_t k = 0;
			if (!has_val || !val[0])
				return PARAM_SYNTAX;
			while (isdigit((unsigned char)val[k]))
				k++;
			if (val[k] || k > 20)
				return PARAM_SYNTAX;
			if (parse_uint(val, UINT64_MAX, &out->size) < 0)
				out->size = UINT64_MAX;
		} else if (!strcasecmp(key, "BODY")) {
			if (!has_val)
				return PARAM_SYNTAX;
			if (!strcasecmp(val, "8BITMIME"))
				out->body_8bit = 1;
			else if (strcasecmp(val, "7BIT"))
				return PARAM_UNKNOWN;
		} else if (!strcasecmp(key, "SMTPUTF8")) {
			if (has_val)
				return PARAM_SYNTAX;
			out->smtputf8 = 1;
		} else {
			return PARAM_UNKNOWN;
		}
	}
	return PARAM_OK;
}

enum param_status cmd_parse_rcpt_params(const char *s)
{
	while (*s == ' ')
		s++;
	return *s ? PARAM_UNKNOWN : PARAM_OK;
}

int cmd_parse_bdat(const char *arg, uint64_t *size, int *last)
{
	char num[24];
	size_t n = 0;
	while (arg[n] >= '0' && arg[n] <= '9') {
		if (n + 1 >= sizeof num)
			return -1;
		num[n] = arg[n];
		n++;
	}
	num[n] = '\0';
	if (n == 0 || parse_uint(num, UINT64_MAX / 2, size) < 0)
		return -1;
	arg += n;
	*last = 0;
	if (!*arg)
		return 0;
	if (*arg != ' ')
		return -1;
	while (*arg == ' ')
		arg++;
	if (!strcasecmp(arg, "LAST")) {
		*last = 1;
		return 0;
	}
	return *arg ? -1 : 0;
}

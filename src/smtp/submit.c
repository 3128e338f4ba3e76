/*
 * submit: see submit.h.
 */
#include "smtp/submit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/dkim.h"
#include "auth/dmarc.h"
#include "auth/keyring.h"
#include "auth/msg.h"
#include "lib/util.h"

char *submit_missing_fields(const char *head, size_t head_len, const char *hostname, int64_t now)
{
	struct msg_headers h;
	char date[64] = "", id[80] = "";
	int has_date, has_id;

	msg_headers_init(&h);
	msg_headers_parse(&h, head, head_len);
	has_date = msg_find_last(&h, "date", h.nfields) >= 0;
	has_id = msg_find_last(&h, "message-id", h.nfields) >= 0;
	msg_headers_clear(&h);
	if (!has_date) {
		time_t t = (time_t)now;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(date, sizeof date, "Date: %a, %d %b %Y %H:%M:%S +0000\n", &tm);
	}
	if (!has_id) {
		char r[25];
		random_hex(r, 24);
		snprintf(id, sizeof id, "Message-ID: <%lld.%s@", (long long)now, r);
	}
	return xasprintf("%s%s%s%s", date, id, has_id ? "" : hostname, has_id ? "" : ">\n");
}

char *submit_insert_fields(const char *head, size_t head_len, const char *fields, size_t *outlen)
{
	size_t fl = strlen(fields), at = head_len;
	int add_lf = 0;
	char *out;

	if (head_len >= 2 && head[head_len - 1] == '\n' && head[head_len - 2] == '\n')
		at = head_len - 1; /* before the empty line */
	else if (head_len == 1 && head[0] == '\n')
		at = 0; /* no header field at all */
	else if (head_len && head[head_len - 1] != '\n')
		add_lf = 1; /* an unterminated last line (a message without a body) */
	out = xmalloc(head_len + fl + 2);
	memcpy(out, head, at);
	*outlen = at;
	if (add_lf)
		out[(*outlen)++] = '\n';
	memcpy(out + *outlen, fields, fl);
	*outlen += fl;
	memcpy(out + *outlen, head + at, head_len - at);
	*outlen += head_len - at;
	out[*outlen] = '\0';
	return out;
}

long submit_from_addresses(const char *head, size_t head_len, char ***out, char *why, size_t whysize)
{
	struct msg_headers h;
	size_t n = 0;
	long rc = 0;

	*out = NULL;
	msg_headers_init(&h);
	msg_headers_parse(&h, head, head_len);
	for (size_t i = 0; i < h.nfields; i++) {
		char *v;
		if (!msg_field_is(&h, i, "from"))
			continue;
		v = msg_field_unfolded(&h, i);
		if (dmarc_from_addresses(v, out, &n, why, whysize) < 0)
			rc = -1;
		free(v);
		if (rc < 0)
			break;
	}
	msg_headers_clear(&h);
	if (rc < 0) {
		/* What parsed before the error is dropped with the rest. */
		for (size_t i = 0; i < n; i++)
			free((*out)[i]);
		free(*out);
		*out = NULL;
		return -1;
	}
	return (long)n;
}

/* Reads the body (file part, then memory) into fn. 0, or -1 (errno). */
static int body_each(const struct maildir_msg *m, void (*fn)(void *, const char *, size_t), void *arg)
{
	char buf[65536];
	off_t off = 0;
	while (off < m->file_len) {
		size_t want = (size_t)(m->file_len - off) < sizeof buf ? (size_t)(m->file_len - off) : sizeof buf;
		ssize_t n = pread(m->file_fd, buf, want, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		fn(arg, buf, (size_t)n);
		off += n;
	}
	if (m->tail_len)
		fn(arg, m->tail, m->tail_len);
	return 0;
}

static void feed_signer(void *arg, const char *data, size_t len)
{
	dkim_signer_feed(arg, data, len);
}

static void feed_sealer(void *arg, const char *data, size_t len)
{
	arc_sealer_feed(arg, data, len);
}

char *submit_sign(const struct keyring_domain *kd, const char *head, size_t head_len, const struct maildir_msg *body,
		  int64_t now, char *err, size_t errsize)
{
	struct dkim_signer *sg = dkim_signer_new(kd->keys, kd->nkeys, now);
	char *out = NULL;

	dkim_signer_feed(sg, head, head_len);
	if (body_each(body, feed_signer, sg) < 0)
		snprintf(err, errsize, "cannot read the spooled message: %s", strerror(errno));
	else
		out = dkim_signer_end(sg, 0, err, errsize);
	dkim_signer_free(sg);
	return out;
}

char *submit_seal(const struct arc_sign_key *key, const char *authserv_id, enum arc_cv cv, const char *head,
		  size_t head_len, const struct maildir_msg *body, int64_t now, char *err, size_t errsize)
{
	struct arc_sealer *sl = arc_sealer_new(key, authserv_id, now);
	char *out = NULL;

	arc_sealer_feed(sl, head, head_len);
	if (body_each(body, feed_sealer, sl) < 0)
		snprintf(err, errsize, "cannot read the spooled message: %s", strerror(errno));
	else
		out = arc_sealer_end(sl, cv, NULL, 0, err, errsize);
	arc_sealer_free(sl);
	return out;
}

/*
 * dsn: see dsn.h. The fields follow RFC 3464 section 2: per-message
 * Reporting-MTA, Original-Envelope-Id, Arrival-Date; per-recipient
 * Final-Recipient, Action, Status, Remote-MTA, Diagnostic-Code,
 * Last-Attempt-Date and (for delays) Will-Retry-Until. Values that come
 * from outside (reply texts, addresses) have their control bytes replaced
 * so that none can end a header line early.
 */
#include "queue/dsn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"

struct out {
	char *p;
	size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		o->cap = (o->len + n + 1) * 2;
		o->p = xrealloc(o->p, o->cap);
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

#define PUTS(o, lit) put((o), lit, sizeof(lit) - 1)

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(struct out *o, const char *fmt, ...)
{
	char *s;
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	put(o, s, (size_t)n);
	free(s);
}

/* A value on one header line: control bytes become '?', at most 900 bytes. */
static const char *clean(const char *s, char *buf, size_t n)
{
	size_t o = 0;
	for (; s && *s && o + 1 < n && o < 900; s++)
		buf[o++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	buf[o] = '\0';
	return buf;
}

void dsn_date(int64_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, n, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

size_t dsn_header_len(const char *msg, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (msg[i] != '\n')
			continue;
		if (i + 1 < len && msg[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && msg[i + 1] == '\r' && msg[i + 2] == '\n')
			return i + 3;
	}
	if (len >= 2 && msg[0] == '\r' && msg[1] == '\n')
		return 2;
	if (len >= 1 && msg[0] == '\n')
		return 1;
	return len;
}

char *dsn_build(const struct dsn_input *in, size_t *len)
{
	struct out o = { 0 };
	char date[64], b1[1024], b2[1024], boundary[96];
	int failed = in->kind == DSN_FAILED;

	snprintf(boundary, sizeof boundary, "%s/%s", in->unique, in->reporting_mta);
	dsn_date(in->now, date, sizeof date);
	putf(&o, "From: Mail Delivery System <MAILER-DAEMON@%s>\n", in->reporting_mta);
	putf(&o, "To: <%s>\n", clean(in->to, b1, sizeof b1));
	putf(&o, "Subject: %s\n", failed ? "Undelivered Mail Returned to Sender"
				      : "Delayed Mail (still being retried)");
	putf(&o, "Date: %s\n", date);
	putf(&o, "Message-ID: <%s@%s>\n", in->unique, in->reporting_mta);
	PUTS(&o, "Auto-Submitted: auto-replied\n");
	PUTS(&o, "MIME-Version: 1.0\n");
	putf(&o, "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"%s\"\n\n", boundary);
	PUTS(&o, "This is a MIME-encapsulated message.\n\n");

	/* 1. for people */
	putf(&o, "--%s\nContent-Description: Notification\nContent-Type: text/plain; charset=utf-8\n\n", boundary);
	putf(&o, "This is the mail system at host %s.\n\n", in->reporting_mta);
	if (failed) {
		PUTS(&o, "I'm sorry to have to inform you that your message could not\n"
			 "be delivered to one or more recipients. The details are below.\n\n");
	} else {
		char until[64];
		dsn_date(in->retry_until, until, sizeof until);
		putf(&o, "Your message could not be delivered yet to one or more recipients.\n"
			 "It will be retried until %s;\nyou do not need to send it again.\n\n", until);
	}
	for (size_t i = 0; i < in->nrcpts; i++) {
		const struct dsn_rcpt *r = &in->rcpts[i];
		const char *why = r->diagnostic ? r->diagnostic : r->local_diagnostic ? r->local_diagnostic : "";
		putf(&o, "<%s>", clean(r->rcpt, b1, sizeof b1));
		if (r->remote_mta)
			putf(&o, ": host %s said: %s\n", clean(r->remote_mta, b2, sizeof b2), clean(why, b1, sizeof b1));
		else
			putf(&o, ": %s\n", clean(why, b1, sizeof b1));
	}
	put(&o, "\n", 1);

	/* 2. for programs (RFC 3464) */
	putf(&o, "--%s\nContent-Description: Delivery report\nContent-Type: message/delivery-status\n\n", boundary);
	putf(&o, "Reporting-MTA: dns; %s\n", in->reporting_mta);
	putf(&o, "X-Postern-Queue-ID: %s\n", in->qid);
	if (in->envid && *in->envid)
		putf(&o, "Original-Envelope-Id: %s\n", clean(in->envid, b1, sizeof b1));
	dsn_date(in->arrival, date, sizeof date);
	putf(&o, "Arrival-Date: %s\n", date);
	for (size_t i = 0; i < in->nrcpts; i++) {
		const struct dsn_rcpt *r = &in->rcpts[i];
		put(&o, "\n", 1);
		putf(&o, "Final-Recipient: rfc822; %s\n", clean(r->rcpt, b1, sizeof b1));
		putf(&o, "Action: %s\n", failed ? "failed" : "delayed");
		putf(&o, "Status: %s\n", r->status && *r->status ? r->status : failed ? "5.0.0" : "4.0.0");
		if (r->remote_mta)
			putf(&o, "Remote-MTA: dns; %s\n", clean(r->remote_mta, b1, sizeof b1));
		if (r->diagnostic)
			putf(&o, "Diagnostic-Code: smtp; %s\n", clean(r->diagnostic, b1, sizeof b1));
		else if (r->local_diagnostic)
			putf(&o, "Diagnostic-Code: X-Postern; %s\n", clean(r->local_diagnostic, b1, sizeof b1));
		if (r->last_attempt) {
			dsn_date(r->last_attempt, date, sizeof date);
			putf(&o, "Last-Attempt-Date: %s\n", date);
		}
		if (!failed) {
			dsn_date(in->retry_until, date, sizeof date);
			putf(&o, "Will-Retry-Until: %s\n", date);
		}
	}
	put(&o, "\n", 1);

	/* 3. the original */
	if (in->full) {
		putf(&o, "--%s\nContent-Description: Undelivered Message\nContent-Type: message/rfc822\n\n", boundary);
	} else {
		putf(&o, "--%s\nContent-Description: Undelivered Message Headers\nContent-Type: text/rfc822-headers\n\n",
		     boundary);
	}
	/* the original with LF line ends, like the rest */
	for (size_t i = 0; i < in->orig_len;) {
		const char *cr = memchr(in->orig + i, '\r', in->orig_len - i);
		size_t run = cr ? (size_t)(cr - in->orig) - i : in->orig_len - i;
		put(&o, in->orig + i, run);
		i += run;
		if (i < in->orig_len) {
			if (!(i + 1 < in->orig_len && in->orig[i + 1] == '\n'))
				put(&o, "\r", 1);
			i++;
		}
	}
	if (o.len && o.p[o.len - 1] != '\n')
		put(&o, "\n", 1);
	putf(&o, "\n--%s--\n", boundary);
	*len = o.len;
	return o.p;
}

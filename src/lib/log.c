/*
 * log: see log.h. Lines go to standard error with a UTC timestamp, written
 * with one write(2) each so that lines from worker threads never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_level current = LOG_LVL_INFO;
static const char *const names[] = { "error", "warn", "info", "debug" };

void log_set_level(enum log_level level)
{
	current = level;
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (!strcasecmp(name, names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_event(enum log_level level, const char *sid, const char *fmt, ...)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n;
	va_list ap;
	int w;

	if (level > current)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
	w = snprintf(line + n, sizeof line - n, ".%03ldZ %s %s ", (long)(tv.tv_usec / 1000),
		     names[level], sid && *sid ? sid : "-");
	if (w > 0)
		n += (size_t)w;
	if (n > sizeof line - 2)
		n = sizeof line - 2;
	va_start(ap, fmt);
	w = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	va_end(ap);
	if (w > 0)
		n += (size_t)w < sizeof line - n - 1 ? (size_t)w : sizeof line - n - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

const char *log_value(char *buf, size_t bufsize, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	int quote = n == 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '=')
			quote = 1;
	}
	if (bufsize < 8) {
		if (bufsize)
			buf[0] = '\0';
		return buf;
	}
	if (quote)
		buf[o++] = '"';
	for (size_t i = 0; i < n && o + 6 < bufsize; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < ' ' || c >= 0x7f) {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		} else {
			buf[o++] = (char)c;
		}
	}
	if (quote)
		buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

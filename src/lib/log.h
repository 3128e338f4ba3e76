/*
 * log: one line per event, "LEVEL session-id key=value ...".
 *
 * The caller composes the key=value part; values that may carry spaces or
 * client-controlled bytes go through log_value(), which quotes them and
 * escapes everything that is not printable ASCII, so a hostile client can
 * never forge a log line. Never pass a password, a key or message content.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_set_level(enum log_level level);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int log_level_parse(const char *name, enum log_level *out);
void log_event(enum log_level level, const char *sid, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Writes a log-safe, quoted-when-needed rendering of s (at most n bytes of
 * it are read) into buf; returns buf. Output is truncated to fit. */
const char *log_value(char *buf, size_t bufsize, const char *s, size_t n);

#define log_error(sid, ...) log_event(LOG_LVL_ERROR, sid, __VA_ARGS__)
#define log_warn(sid, ...) log_event(LOG_LVL_WARN, sid, __VA_ARGS__)
#define log_info(sid, ...) log_event(LOG_LVL_INFO, sid, __VA_ARGS__)
#define log_debug(sid, ...) log_event(LOG_LVL_DEBUG, sid, __VA_ARGS__)

#endif

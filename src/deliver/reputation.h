/*
 * reputation: is a receiver's refusal about us (our sending address's
 * reputation, or our volume) rather than about the message or the
 * recipient? Pure: (reply code, enhanced status, text) against a list of
 * patterns from [routing] reputation_patterns. Adaptive routing
 * (remote.c) sends the refused recipients through the relay when this
 * says yes.
 *
 * Pattern list syntax: entries separated by ';', each
 *
 *     [CODE] STATUS [TEXT]
 *
 * CODE is an optional three-digit reply code that must match exactly;
 * STATUS an enhanced status code (RFC 3463) that matches exactly, or a
 * prefix ending in '.' ("5.7." matches 5.7.606), or '*' for any; TEXT
 * the rest of the entry, matched case-insensitively anywhere in the
 * reply text ('*' or nothing: any text). Bounds: REPUTATION_MAX_PATTERNS
 * entries, REPUTATION_TEXT_MAX bytes of text each.
 *
 * The defaults cover the refusals the big receivers document: Outlook's
 * block lists (S3140, S3150, "banned sending IP"), Gmail's "unsolicited"
 * / "likely suspicious" / "low reputation" and its 4.7.28 and 4.7.0 rate
 * limits, Yahoo's TSS04 and TSS09 deferrals.
 */
#ifndef POSTERN_DELIVER_REPUTATION_H
#define POSTERN_DELIVER_REPUTATION_H

#include <stddef.h>

#define REPUTATION_MAX_PATTERNS 100
#define REPUTATION_TEXT_MAX 200

#define REPUTATION_DEFAULT_PATTERNS                                                                            \
	"5.7.1 (S3140); 5.7.1 (S3150); 5.7. banned sending IP; 5.7.1 part of their network is on our block list; " \
	"5.7.1 unsolicited; 5.7.1 likely suspicious; 5.7.1 low reputation; 4.7.28 *; 4.7.0 unsolicited; "          \
	"4.7.0 rate limited; 4.7.0 TSS04; 4.7.0 TSS09; 5.7.9 TSS09"

struct reputation_pattern {
	int code;        /* 0: any */
	char status[16]; /* "*", "5.7.1" or a prefix "5.7." */
	char text[REPUTATION_TEXT_MAX + 1]; /* "": any */
};

struct reputation_list {
	struct reputation_pattern *p;
	size_t n;
};

/* Parses spec into out (the caller frees with reputation_list_free).
 * Returns 0, or -1 with the problem (and how to fix it) in err. */
int reputation_parse(const char *spec, struct reputation_list *out, char *err, size_t errsize);
void reputation_list_free(struct reputation_list *l);

/* The first pattern that matches the reply, or NULL. status may be NULL
 * or "": it is then read from the text when the text starts with
 * "CODE STATUS" (or "CODE-STATUS"). code 2xx never matches. */
const struct reputation_pattern *reputation_match(const struct reputation_list *l, int code, const char *status,
						  const char *text);

/* The pattern as it would be written in the list. */
void reputation_pattern_text(const struct reputation_pattern *p, char *out, size_t size);

#endif

/*
 * testlib: helpers shared by the unit tests: scratch directories and
 * capturing or silencing what the code under test writes to its standard
 * streams (log lines go to stderr).
 */
#ifndef POSTERN_TESTLIB_H
#define POSTERN_TESTLIB_H

#include <stddef.h>

/* Creates a fresh directory /tmp/postern-NAME-XXXXXX into dir (64 bytes);
 * aborts on failure. */
void testlib_mkdtemp(char *dir, const char *name);
/* Removes dir and everything under it. */
void testlib_rmtree(const char *dir);
/* Writes text to dir/name; returns the path (static buffer, next call
 * overwrites it). */
const char *testlib_write(const char *dir, const char *name, const char *text);

/* While quiet, stderr goes to /dev/null (for tests that provoke errors). */
void testlib_quiet(int on);

/*
 * Redirects fd (1 or 2) into a temporary file until testlib_capture_end(),
 * which returns what was written (a newly allocated string; free it).
 * Captures may not nest for the same fd.
 */
void testlib_capture_begin(int fd);
char *testlib_capture_end(int fd);

/* Replaces standard input with text (from a temporary file), or with
 * /dev/null if text is NULL, until testlib_stdin_end(). */
void testlib_stdin_begin(const char *text);
void testlib_stdin_end(void);

#endif

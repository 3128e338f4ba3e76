/*
 * header: writing message header fields (RFC 5322 section 2.2).
 */
#ifndef POSTERN_HEADER_H
#define POSTERN_HEADER_H

/* "Name: value\n", folded at spaces so that lines stay within 78
 * columns where the words allow (continuation lines start with a tab).
 * Folding only inserts line breaks before existing spaces, which is
 * legal inside comments and quoted strings too. The caller frees. */
char *header_fold(const char *name, const char *value);

#endif

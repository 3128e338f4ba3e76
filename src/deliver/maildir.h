/*
 * maildir: durable delivery into Maildir folders (the layout Dovecot reads).
 *
 * A mailbox user@domain lives in MAIL_DIR/domain/user/ with the usual tmp/,
 * new/ and cur/. Delivery writes the whole message into tmp/ under a unique
 * name, fsyncs it, renames it into new/ and fsyncs new/, so a reader never
 * sees a partial message and a message reported delivered survives a crash.
 *
 * These functions block on the disk: the daemon calls them from worker
 * threads, never from the event loop.
 */
#ifndef POSTERN_MAILDIR_H
#define POSTERN_MAILDIR_H

#include <stddef.h>
#include <sys/types.h>

/* The Maildir of a mailbox address (lower-cased "user@domain"). Returns a
 * newly allocated path, or NULL if the address cannot name a directory
 * safely (empty parts, '/', a leading '.'). */
char *maildir_path(const char *mail_dir, const char *address);

/* Creates path and its tmp/, new/ and cur/ (mode 0700). 0 or -1 (errno). */
int maildir_ensure(const char *path);

/* What goes into one Maildir file, in this order: head (our headers), then
 * file_len bytes of file_fd from offset 0 (the part of a large message that
 * was spilled to disk; file_fd may be -1 when file_len is 0), then tail. */
struct maildir_msg {
	const char *head;
	size_t head_len;
	int file_fd;
	off_t file_len;
	const char *tail;
	size_t tail_len;
};

/*
 * Delivers one message into the Maildir at path (optionally into the
 * subfolder folder, e.g. ".Junk"; NULL for the inbox). On success returns 0
 * and, if name is not NULL, copies the file's base name into name (namesize
 * bytes). On failure returns -1 and leaves nothing in new/ (errno set).
 */
int maildir_deliver(const char *path, const char *folder, const struct maildir_msg *msg, char *name,
		    size_t namesize);

#endif

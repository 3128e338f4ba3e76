/*
 * privs: giving up root. A process started as root switches to the named
 * unprivileged user (its uid, gid and supplementary groups) and can never
 * return; one started as another user keeps running as that user.
 */
#ifndef POSTERN_PRIVS_H
#define POSTERN_PRIVS_H

#include <stddef.h>
#include <sys/types.h>

/* Looks up user; returns 0 and fills uid/gid, or -1 with a message in err. */
int privs_lookup(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errsize);
/* Drops to user if running as root. Returns 0, or -1 with a message in err.
 * Refuses to run as root: user "root" is an error. */
int privs_drop(const char *user, char *err, size_t errsize);

#endif

/*
 * privs: see privs.h. The order matters: supplementary groups, then gid,
 * then uid; afterwards we check that setuid(0) fails, so a libc or kernel
 * surprise cannot leave us quietly privileged.
 */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int privs_lookup(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errsize)
{
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		snprintf(err, errsize,
			 "user '%s' does not exist; create it (useradd --system %s) or set [server] user", user,
			 user);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

int privs_drop(const char *user, char *err, size_t errsize)
{
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0)
		return 0;
	if (privs_lookup(user, &uid, &gid, err, errsize) < 0)
		return -1;
	if (uid == 0) {
		snprintf(err, errsize, "[server] user is '%s', which is root; name an unprivileged user", user);
		return -1;
	}
	if (initgroups(user, gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		snprintf(err, errsize, "cannot switch to user '%s': %s", user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		snprintf(err, errsize, "still able to become root after dropping privileges; refusing to run");
		return -1;
	}
	return 0;
}

/*
 * maildir: see maildir.h. The unique name follows the modern Maildir
 * convention (time.MusecPpidQcounter.host) with ",S=size" appended, which
 * Dovecot reads to skip a stat(2). Names never repeat inside one process
 * (the counter) nor across restarts (time and pid).
 *
 * Invariant: a file appears in new/ only by rename(2) from tmp/ after its
 * contents were fsync'd; new/ itself is fsync'd before we report success.
 */
#include "maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/util.h"

/*
 * Group commit for directory fsyncs. Concurrent deliveries into one
 * mailbox each need new/ synced after their rename; one fsync that starts
 * after a rename covers it, so while one thread syncs a directory the
 * others queue behind it and share the next sync. Generations: a sync
 * numbered g covers every rename made before it started; a caller needs
 * the first sync numbered at least `next` as it was when the caller came.
 */
struct dirsync {
	char *path;
	uint64_t next, done;
	int busy;
	struct dirsync *link;
};

static pthread_mutex_t ds_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ds_cond = PTHREAD_COND_INITIALIZER;
static struct dirsync *ds_list;

static int fsync_dir_grouped(const char *path)
{
	struct dirsync *d;
	uint64_t target;
	int rc = 0;

	pthread_mutex_lock(&ds_lock);
	for (d = ds_list; d && strcmp(d->path, path); d = d->link)
		;
	if (!d) {
		d = xcalloc(1, sizeof *d);
		d->path = xstrdup(path);
		d->next = 1;
		d->link = ds_list;
		ds_list = d;
	}
	target = d->next;
	while (d->done < target) {
		if (d->busy) {
			pthread_cond_wait(&ds_cond, &ds_lock);
			continue;
		}
		uint64_t gen = d->next++;
		d->busy = 1;
		pthread_mutex_unlock(&ds_lock);
		rc = fsync_dir(path);
		pthread_mutex_lock(&ds_lock);
		d->busy = 0;
		if (rc == 0 && gen > d->done)
			d->done = gen;
		pthread_cond_broadcast(&ds_cond);
		if (rc < 0)
			break;
	}
	pthread_mutex_unlock(&ds_lock);
	return rc;
}

static char host_part[256];
static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static atomic_ulong counter;

static void host_init(void)
{
	char h[200] = "localhost";
	size_t o = 0;
	gethostname(h, sizeof h - 1);
	h[sizeof h - 1] = '\0';
	/* '/' and ':' may not appear in a Maildir name: escape them as octal. */
	for (const char *p = h; *p && o + 5 < sizeof host_part; p++) {
		if (*p == '/')
			o += (size_t)snprintf(host_part + o, sizeof host_part - o, "\\057");
		else if (*p == ':')
			o += (size_t)snprintf(host_part + o, sizeof host_part - o, "\\072");
		else
			host_part[o++] = *p;
	}
	host_part[o] = '\0';
}

static int safe_component(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '/' || c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

char *maildir_path(const char *mail_dir, const char *address)
{
	const char *at = strrchr(address, '@');
	if (!at || !safe_component(address, (size_t)(at - address)) || !safe_component(at + 1, strlen(at + 1)))
		return NULL;
	return xasprintf("%s/%s/%.*s", mail_dir, at + 1, (int)(at - address), address);
}

int maildir_ensure(const char *path)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char sub[PATH_MAX];
	if (mkdir_p(path, 0700) < 0)
		return -1;
	for (size_t i = 0; i < ARRAY_LEN(subs); i++) {
		if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, subs[i]) >= sizeof sub) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (mkdir(sub, 0700) < 0 && errno != EEXIST)
			return -1;
	}
	return 0;
}

static int copy_body(int in, off_t len, int out)
{
	off_t off = 0;
	char buf[65536];

	while (off < len) {
		size_t want = (size_t)(len - off) < sizeof buf ? (size_t)(len - off) : sizeof buf;
		ssize_t n = copy_file_range(in, &off, out, NULL, want, 0);
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			errno = EIO; /* the body file is shorter than promised */
			return -1;
		}
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return -1;
		/* No kernel copy between these files: copy through user space. */
		n = pread(in, buf, want, off);
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		if (write_all(out, buf, (size_t)n) < 0)
			return -1;
		off += n;
	}
	return 0;
}

int maildir_deliver(const char *path, const char *folder, const struct maildir_msg *msg, char *name,
		    size_t namesize)
{
	char dir[PATH_MAX], base[300], tmp[PATH_MAX], final[PATH_MAX], newdir[PATH_MAX];
	struct timeval tv;
	int fd, saved;
	size_t size = msg->head_len + (size_t)msg->file_len + msg->tail_len;

	pthread_once(&host_once, host_init);
	if ((size_t)snprintf(dir, sizeof dir, "%s%s%s", path, folder ? "/" : "", folder ? folder : "") >= sizeof dir) {
		errno = ENAMETOOLONG;
		return -1;
	}
	gettimeofday(&tv, NULL);
	snprintf(base, sizeof base, "%lld.M%ldP%ldQ%lu.%s", (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
		 atomic_fetch_add(&counter, 1) + 1, host_part);
	if ((size_t)snprintf(tmp, sizeof tmp, "%s/tmp/%s", dir, base) >= sizeof tmp ||
	    (size_t)snprintf(final, sizeof final, "%s/new/%s,S=%zu", dir, base, size) >= sizeof final ||
	    (size_t)snprintf(newdir, sizeof newdir, "%s/new", dir) >= sizeof newdir) {
		errno = ENAMETOOLONG;
		return -1;
	}

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT) {
		/* First delivery into this folder: make it, then try again. */
		if (maildir_ensure(dir) < 0)
			return -1;
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return -1;
	if (write_all(fd, msg->head, msg->head_len) < 0 ||
	    (msg->file_len > 0 && copy_body(msg->file_fd, msg->file_len, fd) < 0) ||
	    write_all(fd, msg->tail, msg->tail_len) < 0 || fdatasync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, final) < 0 && (errno != ENOENT || maildir_ensure(dir) < 0 || rename(tmp, final) < 0))
		goto fail;
	if (fsync_dir_grouped(newdir) < 0) {
		/* The rename happened but may not be durable; we cannot report
		 * success, and the sender will retry: take the file back so the
		 * retry does not produce a duplicate. */
		saved = errno;
		unlink(final);
		errno = saved;
		return -1;
	}
	if (name)
		snprintf(name, namesize, "%s,S=%zu", base, size);
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

/*
 * selftest_store: see selftest_store.h.
 */
#include "doctor/selftest_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "lib/util.h"

int selftest_token_valid(const char *t, size_t n)
{
	if (n < SELFTEST_TOKEN_MIN || n > SELFTEST_TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9')))
			return 0;
	return 1;
}

char *selftest_dir(const char *data_dir)
{
	return xasprintf("%s/selftest", data_dir);
}

/* dir/name written whole, fsync'd, then renamed into place. */
static int write_file(const char *dir, const char *name, const char *data)
{
	char *tmp = xasprintf("%s/.%s.tmp", dir, name), *path = xasprintf("%s/%s", dir, name);
	size_t len = strlen(data), off = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640), rc = -1, e = 0;
	if (fd < 0) {
		e = errno;
		goto out;
	}
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			e = errno ? errno : EIO;
			break;
		}
		off += (size_t)w;
	}
	if (off == len && fsync(fd) == 0 && rename(tmp, path) == 0)
		rc = 0;
	else if (!e)
		e = errno;
	close(fd);
	if (rc < 0)
		unlink(tmp);
out:
	free(tmp);
	free(path);
	errno = e;
	return rc;
}

struct entry {
	char name[80];
	time_t mtime;
};

static int by_age(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* Removes the oldest reports beyond keep. */
static void prune(const char *dir, unsigned keep)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct entry *v = NULL;
	size_t n = 0;
	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct stat st;
		char *p;
		if (len < 6 || len >= sizeof v->name || strcmp(de->d_name + len - 5, ".json"))
			continue;
		p = xasprintf("%s/%s", dir, de->d_name);
		if (stat(p, &st) == 0) {
			v = xrealloc(v, (n + 1) * sizeof *v);
			memcpy(v[n].name, de->d_name, len - 5);
			v[n].name[len - 5] = '\0';
			v[n].mtime = st.st_mtime;
			n++;
		}
		free(p);
	}
	closedir(d);
	if (n > keep) {
		qsort(v, n, sizeof *v, by_age);
		for (size_t i = 0; i < n - keep; i++) {
			char *j = xasprintf("%s/%s.json", dir, v[i].name), *t = xasprintf("%s/%s.txt", dir, v[i].name);
			unlink(j);
			unlink(t);
			free(j);
			free(t);
		}
	}
	free(v);
}

int selftest_save(const char *data_dir, const char *token, const char *json, const char *text, unsigned keep)
{
	char *dir = selftest_dir(data_dir), name[SELFTEST_TOKEN_MAX + 8];
	int rc = -1;
	if (!selftest_token_valid(token, strlen(token))) {
		errno = EINVAL;
		goto out;
	}
	if (mkdir_p(dir, 0750) < 0)
		goto out;
	snprintf(name, sizeof name, "%s.txt", token);
	if (write_file(dir, name, text) < 0)
		goto out;
	snprintf(name, sizeof name, "%s.json", token);
	if (write_file(dir, name, json) < 0)
		goto out;
	rc = 0;
	prune(dir, keep);
out:
	free(dir);
	return rc;
}

char *selftest_reply_message(const char *hostname, const char *domain, const char *to, const char *token,
			     double score, const char *text, int64_t now)
{
	char date[64], rnd[9];
	time_t t = (time_t)now;
	struct tm tm;
	unsigned char b[4];
	gmtime_r(&t, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (RAND_bytes(b, sizeof b) != 1)
		memset(b, 0, sizeof b);
	snprintf(rnd, sizeof rnd, "%02x%02x%02x%02x", b[0], b[1], b[2], b[3]);
	return xasprintf("From: postern self-test <postmaster@%s>\n"
			 "To: <%s>\n"
			 "Subject: Self-test %s: %.1f/10\n"
			 "Date: %s\n"
			 "Message-ID: <selftest.%s.%s@%s>\n"
			 "Auto-Submitted: auto-replied\n"
			 "MIME-Version: 1.0\n"
			 "Content-Type: text/plain; charset=utf-8\n"
			 "Content-Transfer-Encoding: 8bit\n"
			 "\n"
			 "Your message to the self-test address was graded by %s.\n"
			 "\n"
			 "%s\n"
			 "-- \n"
			 "postern selftest show %s\n",
			 domain, to, token, score, date, token, rnd, hostname, hostname, text, token);
}

void selftest_new_token(char *out)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char b[10];
	if (RAND_bytes(b, sizeof b) != 1)
		abort();
	for (size_t i = 0; i < sizeof b; i++)
		out[i] = alphabet[b[i] % 36];
	out[sizeof b] = '\0';
}

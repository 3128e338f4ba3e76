/*
 * testlib: see testlib.h. Everything here aborts on failure: a broken test
 * environment is a bug in the test, not a result.
 */
#include "testlib.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void testlib_mkdtemp(char *dir, const char *name)
{
	snprintf(dir, 64, "/tmp/postern-%s-XXXXXX", name);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		abort();
	}
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void testlib_rmtree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *testlib_write(const char *dir, const char *name, const char *text)
{
	static char path[512];
	FILE *f;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		abort();
	}
	return path;
}

static int quiet_saved = -1;

void testlib_quiet(int on)
{
	fflush(stderr);
	if (on && quiet_saved < 0) {
		int null = open("/dev/null", O_WRONLY);
		quiet_saved = dup(2);
		if (null < 0 || quiet_saved < 0)
			abort();
		dup2(null, 2);
		close(null);
	} else if (!on && quiet_saved >= 0) {
		dup2(quiet_saved, 2);
		close(quiet_saved);
		quiet_saved = -1;
	}
}

static int capture_saved[3] = { -1, -1, -1 };
static FILE *capture_file[3];

void testlib_capture_begin(int fd)
{
	FILE *f = tmpfile();
	if (!f || fd < 1 || fd > 2 || capture_saved[fd] >= 0)
		abort();
	fflush(fd == 1 ? stdout : stderr);
	capture_saved[fd] = dup(fd);
	dup2(fileno(f), fd);
	capture_file[fd] = f;
}

char *testlib_capture_end(int fd)
{
	FILE *f = capture_file[fd];
	char *text;
	long n;

	fflush(fd == 1 ? stdout : stderr);
	dup2(capture_saved[fd], fd);
	close(capture_saved[fd]);
	capture_saved[fd] = -1;
	n = ftell(f);
	text = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
	rewind(f);
	if (!text || (n > 0 && fread(text, 1, (size_t)n, f) != (size_t)n))
		abort();
	fclose(f);
	capture_file[fd] = NULL;
	return text;
}

static int stdin_saved = -1;

void testlib_stdin_begin(const char *text)
{
	int fd;
	if (stdin_saved >= 0)
		abort();
	if (text) {
		FILE *f = tmpfile();
		if (!f || fputs(text, f) < 0 || fflush(f) != 0)
			abort();
		fd = dup(fileno(f));
		fclose(f);
		lseek(fd, 0, SEEK_SET);
	} else {
		fd = open("/dev/null", O_RDONLY);
	}
	stdin_saved = dup(0);
	dup2(fd, 0);
	close(fd);
}

void testlib_stdin_end(void)
{
	dup2(stdin_saved, 0);
	close(stdin_saved);
	stdin_saved = -1;
}

/*
 * password: see password.h. libxcrypt does the work: crypt_gensalt_ra()
 * draws the salt from the kernel's random source, crypt_r() hashes. Its
 * struct crypt_data is large (tens of KiB) and holds intermediate state, so
 * it lives on the heap and is wiped before it is freed.
 *
 * libxcrypt signals failure either with NULL or with a "failure token" that
 * starts with '*'; both are treated the same. A stored hash starting with '!'
 * or '*' is a locked account and never matches.
 */
#include "password.h"

#include <assert.h>
#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

static_assert(PASSWORD_MAX < CRYPT_MAX_PASSPHRASE_SIZE, "PASSWORD_MAX must fit libxcrypt");

/* Hashes plain with setting into a new string, or NULL. */
static char *run_crypt(const char *plain, const char *setting)
{
	struct crypt_data *cd = xcalloc(1, sizeof *cd);
	const char *h = crypt_r(plain, setting, cd);
	char *res = NULL;

	if (h && h[0] != '*')
		res = xstrdup(h);
	explicit_bzero(cd, sizeof *cd);
	free(cd);
	return res;
}

char *password_hash(const char *plain)
{
	char *setting, *res;

	if (strlen(plain) > PASSWORD_MAX) {
		log_error(NULL, "password op=hash error=\"longer than %d bytes\"", PASSWORD_MAX);
		return NULL;
	}
	errno = 0;
	setting = crypt_gensalt_ra("$y$", 0, NULL, 0);
	if (!setting) {
		log_error(NULL, "password op=gensalt error=\"%s\"", strerror(errno ? errno : EINVAL));
		return NULL;
	}
	res = run_crypt(plain, setting);
	free(setting);
	if (!res)
		log_error(NULL, "password op=hash error=\"crypt_r failed\"");
	return res;
}

int password_verify(const char *plain, const char *hash)
{
	char *h;
	size_t n;
	volatile unsigned char diff = 0;

	if (!plain || !hash || !*hash || hash[0] == '!' || hash[0] == '*' || strlen(plain) > PASSWORD_MAX)
		return 0;
	h = run_crypt(plain, hash);
	if (!h)
		return 0;
	/* The length of a hash is public (it is in the format); its bytes are not. */
	n = strlen(hash);
	if (strlen(h) != n) {
		free(h);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(h[i] ^ hash[i]);
	free(h);
	return diff == 0;
}

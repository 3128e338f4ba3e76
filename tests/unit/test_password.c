/*
 * Tests of password hashing: the hashes are yescrypt, salted afresh each
 * time, verify only with the right password, and hashes written by the
 * system's own tools (the same libxcrypt formats /etc/shadow uses) verify.
 */
#include <stdlib.h>

#include "lib/password.h"
#include "testlib.h"
#include "unit.h"

TEST(password_hash_and_verify)
{
	char *h1 = password_hash("correct horse");
	char *h2 = password_hash("correct horse");

	CHECK(h1 != NULL && h2 != NULL);
	if (!h1 || !h2)
		return;
	CHECK(!strncmp(h1, "$y$", 3));
	CHECK(strcmp(h1, h2) != 0); /* a fresh salt each time */
	CHECK(strstr(h1, "correct") == NULL);
	CHECK_INT(password_verify("correct horse", h1), 1);
	CHECK_INT(password_verify("correct horse", h2), 1);
	CHECK_INT(password_verify("correct horsE", h1), 0);
	CHECK_INT(password_verify("correct horse ", h1), 0);
	CHECK_INT(password_verify("", h1), 0);
	free(h1);
	free(h2);
}

TEST(password_known_hashes)
{
	/* Made with perl's crypt() (the system libxcrypt). */
	static const char y[] = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$zwtVrjrUCmXcyLTs6oxLTQlzifSUkF8RHJ./tK5KU79";
	static const char sha512[] = "$6$saltsalt$hRM5XZ86KXEw9UOmjigeVqFgULtFB2sgpC9lXQDfMib3Zgw7mEiUvBJI2Eplz"
				     "fAqxL5Vvwp2scFtv/uamSo5z0";

	CHECK_INT(password_verify("correct horse", y), 1);
	CHECK_INT(password_verify("correct horse", sha512), 1);
	CHECK_INT(password_verify("battery staple", y), 0);
	CHECK_INT(password_verify("battery staple", sha512), 0);
}

TEST(password_unusable_hashes_never_match)
{
	char *h = password_hash("");
	char *locked;

	/* An empty password can be hashed (the CLI refuses it earlier). */
	CHECK(h != NULL);
	if (h) {
		CHECK_INT(password_verify("", h), 1);
		CHECK_INT(password_verify("x", h), 0);
		locked = malloc(strlen(h) + 2);
		locked[0] = '!';
		strcpy(locked + 1, h);
		CHECK_INT(password_verify("", locked), 0);
		free(locked);
		free(h);
	}
	CHECK_INT(password_verify("x", NULL), 0);
	CHECK_INT(password_verify(NULL, "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$zwtVrjrUCmXcyLTs6oxLTQlzifSUkF8RHJ./tK5KU79"), 0);
	CHECK_INT(password_verify("x", ""), 0);
	CHECK_INT(password_verify("x", "*"), 0);
	CHECK_INT(password_verify("x", "*0"), 0);
	CHECK_INT(password_verify("x", "$y$"), 0);
	CHECK_INT(password_verify("x", "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$"), 0);
	CHECK_INT(password_verify("x", "not a hash at all"), 0);
}

TEST(password_long)
{
	char pw[PASSWORD_MAX + 2];
	char *h;

	memset(pw, 'p', sizeof pw - 1);
	pw[sizeof pw - 1] = '\0';
	/* One byte over the limit: refused (and logged), never truncated. */
	testlib_quiet(1);
	CHECK(password_hash(pw) == NULL);
	testlib_quiet(0);
	CHECK_INT(password_verify(pw, "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$zwtVrjrUCmXcyLTs6oxLTQlzifSUkF8RHJ./tK5KU79"), 0);
	pw[PASSWORD_MAX] = '\0';
	h = password_hash(pw);
	CHECK(h != NULL);
	if (!h)
		return;
	CHECK_INT(password_verify(pw, h), 1);
	pw[PASSWORD_MAX - 1] = 'q';
	CHECK_INT(password_verify(pw, h), 0);
	free(h);
}

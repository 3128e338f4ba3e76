/*
 * password: hashing and checking login passwords with yescrypt ("$y$", the
 * default of current Debian and of libxcrypt), so that the hashes in the
 * state database are the same kind /etc/shadow holds and Dovecot can check
 * them too.
 *
 * Hashing is deliberately slow (tens of milliseconds): never call these on
 * the event loop. A plaintext password is never logged or kept longer than
 * the call; callers should wipe their own copies (explicit_bzero).
 */
#ifndef POSTERN_PASSWORD_H
#define POSTERN_PASSWORD_H

/* The longest password, in bytes: libxcrypt takes at most
 * CRYPT_MAX_PASSPHRASE_SIZE (512) including the NUL. */
#define PASSWORD_MAX 511

/* Returns a newly allocated "$y$..." hash of plain with a fresh random salt,
 * which the caller frees; NULL (logged) if plain is longer than
 * PASSWORD_MAX or libxcrypt fails. */
char *password_hash(const char *plain);

/* Returns 1 if plain matches hash, else 0 (also for a password longer than
 * PASSWORD_MAX, or a NULL, empty, locked "!..." or otherwise unusable hash). The comparison takes the same time
 * wherever the first differing byte is. */
int password_verify(const char *plain, const char *hash);

#endif

/*
 * keyring: the DKIM signing keys of our domains, and their ARC sealing key.
 *
 * Layout (what `postern dkim keygen` writes): DIR/DOMAIN/SELECTOR.key, one
 * PEM private key per selector, RSA (1024 bits or more) or Ed25519. Every
 * key of a domain signs its mail: one RSA and one Ed25519 key is dual
 * signing (RFC 8463 section 5). The ARC sealing key of a domain is its
 * first RSA key by selector name (ARC validators outside, dkimpy and
 * OpenARC, know rsa-sha256 only), or its first key if it has no RSA key.
 *
 * Loaded at start and on reload, never per message: a message only looks
 * its From domain up (keyring_find). Files not ending in ".key" are
 * ignored (a record kept beside the key, say); a ".key" file that cannot
 * be read or is not a usable key is a problem, reported and loading goes
 * on. The keyring is read-only once loaded, so worker threads may sign
 * with it while the loop uses it too.
 */
#ifndef POSTERN_KEYRING_H
#define POSTERN_KEYRING_H

#include <stddef.h>

struct dkim_sign_key;
struct arc_sign_key;

#define KEYRING_MAX_KEYS 8 /* keys per domain */

struct keyring_domain {
	char *domain; /* lower-case */
	struct dkim_sign_key *keys[KEYRING_MAX_KEYS];
	size_t nkeys;
	struct arc_sign_key *seal; /* NULL when the domain has no key */
};

struct keyring {
	struct keyring_domain *domains;
	size_t ndomains;
};

/* Loads every DIR/DOMAIN/SELECTOR.key. A DIR that does not exist is an
 * empty keyring. Each problem goes to report(arg, text) (text names the
 * file and the fix); returns the keyring of what loaded (free it with
 * keyring_free()). */
struct keyring *keyring_load(const char *dir, void (*report)(void *arg, const char *text), void *arg);
/* The keys of domain (any case), or NULL. Borrowed. */
const struct keyring_domain *keyring_find(const struct keyring *k, const char *domain);
void keyring_free(struct keyring *k);

#endif

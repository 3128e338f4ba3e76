/*
 * tls: the server-side TLS context (OpenSSL). TLS 1.2 and 1.3 only,
 * server cipher preference, no compression, no renegotiation, session
 * tickets on. A context is loaded from the configured PEM files at start and
 * again on SIGHUP; sessions keep a reference to the context they began with.
 */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

/* Returns a new context, or NULL with the reason in err. */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, char *err, size_t errsize);

/* Describes an established connection: "TLSv1.3 with cipher X (256/256 bits)"
 * style pieces for logs and Received headers. */
struct tls_info {
	char version[16];
	char cipher[64];
	int bits, alg_bits;
};
void tls_describe(SSL *ssl, struct tls_info *out);

#endif

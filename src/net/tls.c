/*
 * tls: see tls.h.
 */
#include "tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "lib/util.h"

static void ssl_error(char *err, size_t errsize, const char *what, const char *path)
{
	unsigned long e = ERR_get_error();
	char buf[256];
	ERR_error_string_n(e, buf, sizeof buf);
	snprintf(err, errsize, "%s %s: %s", what, path, buf);
	ERR_clear_error();
}

SSL_CTX *tls_server_ctx(const char *cert, const char *key, char *err, size_t errsize)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		ssl_error(err, errsize, "cannot create TLS context", "");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_RENEGOTIATION);
	/* TLS 1.2: forward-secret AEAD suites only. */
	SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!MD5:!DSS");
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"postern", 7);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		ssl_error(err, errsize, "cannot load certificate", cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		ssl_error(err, errsize, "cannot load key", key);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ssl_error(err, errsize, "key does not match certificate", cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

void tls_describe(SSL *ssl, struct tls_info *out)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	str_copy(out->version, SSL_get_version(ssl), sizeof out->version);
	str_copy(out->cipher, c ? SSL_CIPHER_get_name(c) : "unknown", sizeof out->cipher);
	out->bits = c ? SSL_CIPHER_get_bits(c, &out->alg_bits) : 0;
	if (!c)
		out->alg_bits = 0;
}

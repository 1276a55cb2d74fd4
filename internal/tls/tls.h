/* tls: every SSL_CTX the project builds. Server: TLS 1.2–1.3, Mozilla
 * "intermediate" ciphers, session cache + tickets for resumption.
 * Client: peer verification always on (CA file or the system bundle). */
#ifndef DROPSHIP_TLS_H
#define DROPSHIP_TLS_H
#include <stddef.h>
#include <openssl/ssl.h>

/* Builds the server context from PEM files. Returns NULL with a message in err. */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen);

/* Builds a verifying client context; ca_file NULL or "" = system default paths. */
SSL_CTX *tls_client_ctx_new(const char *ca_file, char *err, size_t errlen);

/* New client SSL for one connection to host: SNI and host name check set. NULL on failure. */
SSL *tls_client_ssl_new(SSL_CTX *ctx, const char *host);

/* Writes the first queued OpenSSL error into buf (or fallback). Returns buf. */
const char *tls_last_error(char *buf, size_t len, const char *fallback);

#endif

/* tls: every SSL_CTX the project builds. Server: TLS 1.2–1.3, Mozilla
 * "intermediate" ciphers, session cache + tickets for resumption.
 * Client: peer verification always on (CA file or the system bundle), and
 * on request a record of why a connection failed, in OpenSSL's words. */
#ifndef DROPSHIP_TLS_H
#define DROPSHIP_TLS_H
#include <stddef.h>
#include <openssl/ssl.h>

/* Builds the server context from PEM files. Returns NULL with a message in err. */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen);

/* Builds a verifying client context; ca_file NULL or "" = system default paths. */
SSL_CTX *tls_client_ctx_new(const char *ca_file, char *err, size_t errlen);

/* New client SSL for one connection to host: the name (or, for an IP
 * literal, the address) checked against the certificate; SNI sent for a
 * name. NULL on failure. */
SSL *tls_client_ssl_new(SSL_CTX *ctx, const char *host);

/* What went wrong on one client connection, as its SSL saw it. Filled in by
 * callbacks once tls_client_watch is called; cleared when a handshake
 * starts. */
struct tls_client_diag {
	long verify_error;      /* first failed certificate check (X509_V_ERR_*), X509_V_OK if none */
	int io_errno;           /* errno of the socket read or write that failed, 0 if none */
	int connected;          /* a socket write went through: the TCP connection was up */
	int handshake_done;     /* the TLS handshake completed */
};

/* Records into d what happens on ssl (an SSL from a context of
 * tls_client_ctx_new); d belongs to the caller and must stay until ssl is
 * freed or tls_client_watch(ssl, NULL) has detached it. */
void tls_client_watch(SSL *ssl, struct tls_client_diag *d);

/* Why a watched connection failed, in words an operator can act on: the
 * certificate check that failed, the socket error, or ssl_err (the oldest
 * OpenSSL error the connection reported, 0 if none). Returns buf, or NULL
 * when none of these explains it (e.g. the peer simply closed after the
 * handshake). */
const char *tls_client_failure(const struct tls_client_diag *d, unsigned long ssl_err, char *buf, size_t len);

/* Writes the first queued OpenSSL error into buf (or fallback). Returns buf. */
const char *tls_last_error(char *buf, size_t len, const char *fallback);

#endif

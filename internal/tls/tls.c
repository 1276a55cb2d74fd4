#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"

/* Mozilla "intermediate" (v5.7) TLS 1.2 suites; TLS 1.3 suites are OpenSSL's defaults. */
static const char intermediate_ciphers[] =
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

const char *tls_last_error(char *buf, size_t len, const char *fallback)
{
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "%s", fallback);
	ERR_clear_error();
	return buf;
}

static int ctx_common(SSL_CTX *ctx)
{
	return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) &&
	       SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) &&
	       SSL_CTX_set_cipher_list(ctx, intermediate_ciphers);
}

/* A context with the protocol range and ciphers both sides share. */
static SSL_CTX *ctx_new(const SSL_METHOD *method, char *err, size_t errlen)
{
	char ebuf[256];
	SSL_CTX *ctx = SSL_CTX_new(method);
	if (!ctx) {
		snprintf(err, errlen, "TLS: %s", tls_last_error(ebuf, sizeof ebuf, "cannot create context"));
		return NULL;
	}
	if (!ctx_common(ctx)) {
		snprintf(err, errlen, "TLS: %s", tls_last_error(ebuf, sizeof ebuf, "bad protocol settings"));
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	char ebuf[256];
	SSL_CTX *ctx = ctx_new(TLS_server_method(), err, errlen);
	if (!ctx)
		return NULL;
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	                         SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_dh_auto(ctx, 1);
	/* Resumption: a server-side cache for TLS 1.2 session ids, plus tickets (on by default). */
	static const unsigned char sid_ctx[] = "dropshipd";
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, 20000);
	SSL_CTX_set_timeout(ctx, 3600);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* idle keep-alive connections hold no 32 KiB buffers */
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		snprintf(err, errlen, "%s: cannot load certificate: %s", cert_file,
		         tls_last_error(ebuf, sizeof ebuf, "unknown error"));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errlen, "%s: cannot load private key: %s", key_file,
		         tls_last_error(ebuf, sizeof ebuf, "unknown error"));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "%s: private key does not match %s", key_file, cert_file);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* The SSL ex_data slot of a watched connection's struct tls_client_diag:
 * one per process, as OpenSSL numbers them. */
static int tls_diag_index = -1;
static pthread_once_t tls_diag_once = PTHREAD_ONCE_INIT;

static void tls_diag_index_new(void)
{
	tls_diag_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static struct tls_client_diag *tls_diag(const SSL *ssl)
{
	return ssl && tls_diag_index >= 0 ? SSL_get_ex_data(ssl, tls_diag_index) : NULL;
}

/* Leaves OpenSSL's verdict as it is and remembers the first failure: the
 * SSL's own verify result is gone once the SSL is cleared for a reconnect. */
static int tls_verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_client_diag *d = tls_diag(ssl);
	if (!ok && d && d->verify_error == X509_V_OK)
		d->verify_error = X509_STORE_CTX_get_error(xs);
	return ok;
}

/* On the socket BIO (its argument is the SSL): a write that went through
 * means the TCP connection is up; a read or write that failed for good
 * leaves its errno, which is gone by the time the failure is reported. */
static long tls_bio_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl, int ret,
                       size_t *processed)
{
	(void)argp, (void)len, (void)argi, (void)argl, (void)processed;
	int e = errno;
	if (oper != (BIO_CB_READ | BIO_CB_RETURN) && oper != (BIO_CB_WRITE | BIO_CB_RETURN))
		return ret;
	struct tls_client_diag *d = tls_diag((const SSL *)(const void *)BIO_get_callback_arg(b));
	if (d && ret > 0 && (oper & BIO_CB_WRITE))
		d->connected = 1;
	else if (d && ret < 0 && !BIO_should_retry(b) && e)
		d->io_errno = e;
	errno = e;
	return ret;
}

/* When a handshake starts, the socket's BIO is in place: a BIO not yet
 * watched is a new connection (libevent reuses the SSL when it connects
 * again), whose story starts afresh. A renegotiation keeps the story. */
static void tls_info_cb(const SSL *ssl, int where, int ret)
{
	(void)ret;
	struct tls_client_diag *d = tls_diag(ssl);
	if (!d)
		return;
	if (where & SSL_CB_HANDSHAKE_START) {
		BIO *bios[2] = { SSL_get_rbio(ssl), SSL_get_wbio(ssl) };
		for (int i = 0; i < 2; i++)
			if (bios[i] && BIO_get_callback_ex(bios[i]) != tls_bio_cb) {
				*d = (struct tls_client_diag){ .verify_error = X509_V_OK };
				BIO_set_callback_arg(bios[i], (char *)(void *)(SSL *)ssl);
				BIO_set_callback_ex(bios[i], tls_bio_cb);
			}
	}
	if (where & SSL_CB_HANDSHAKE_DONE)
		d->handshake_done = 1;
}

void tls_client_watch(SSL *ssl, struct tls_client_diag *d)
{
	pthread_once(&tls_diag_once, tls_diag_index_new);
	if (tls_diag_index < 0)
		return;
	SSL_set_ex_data(ssl, tls_diag_index, d);
	if (!d)
		return;
	*d = (struct tls_client_diag){ .verify_error = X509_V_OK };
	SSL_set_info_callback(ssl, tls_info_cb);
}

/* errno in a few words: the common ones as operators say them. */
static const char *tls_errno_text(int e, char *buf, size_t len)
{
	switch (e) {
	case ECONNREFUSED: return "connection refused";
	case ECONNRESET: return "connection reset";
	}
	const char *s = strerror_r(e, buf, len);
	if (s != buf)
		snprintf(buf, len, "%s", s);
	if (buf[0] >= 'A' && buf[0] <= 'Z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

const char *tls_client_failure(const struct tls_client_diag *d, unsigned long ssl_err, char *buf, size_t len)
{
	char tmp[128];
	if (d->verify_error != X509_V_OK) {
		snprintf(buf, len, "certificate verify failed: %s", X509_verify_cert_error_string(d->verify_error));
		return buf;
	}
	if (d->io_errno) {
		snprintf(buf, len, "%s", tls_errno_text(d->io_errno, tmp, sizeof tmp));
		return buf;
	}
	if (!ssl_err)
		return NULL;
	/* After the handshake an end of stream is a close, said better by the caller. */
	if (d->handshake_done && ERR_GET_LIB(ssl_err) == ERR_LIB_SSL &&
	    ERR_GET_REASON(ssl_err) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
		return NULL;
	const char *reason = ERR_reason_error_string(ssl_err);
	if (!reason) {
		ERR_error_string_n(ssl_err, tmp, sizeof tmp);
		reason = tmp;
	}
	snprintf(buf, len, "%s: %s", d->handshake_done ? "TLS error" : "TLS handshake failed", reason);
	return buf;
}

SSL_CTX *tls_client_ctx_new(const char *ca_file, char *err, size_t errlen)
{
	char ebuf[256];
	SSL_CTX *ctx = ctx_new(TLS_client_method(), err, errlen);
	if (!ctx)
		return NULL;
	/* Before any verification can read the slot number. */
	pthread_once(&tls_diag_once, tls_diag_index_new);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_cb);
	int ok = (ca_file && *ca_file) ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
	                               : SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		snprintf(err, errlen, "%s: cannot load CA certificates: %s",
		         (ca_file && *ca_file) ? ca_file : "system default",
		         tls_last_error(ebuf, sizeof ebuf, "unknown error"));
		goto fail;
	}
	/* Sessions are not resumed (connections are kept alive instead), so a
	 * cache would only hold every peer's session and certificate, up to
	 * 20,480 of them. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL *tls_client_ssl_new(SSL_CTX *ctx, const char *host)
{
	SSL *ssl = SSL_new(ctx);
	if (!ssl)
		return NULL;
	unsigned char addr[16];
	int is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
	/* SNI alone verifies nothing: the name (or address) check is what binds
	 * the peer. SNI carries host names only, never addresses. */
	int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1
	               : SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
	if (!ok) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	return ssl;
}

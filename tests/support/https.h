/* https: a small blocking HTTPS/1.1 client for end-to-end tests, with
 * helpers to sign native webhooks the way a storefront does. */
#ifndef DROPSHIP_TEST_HTTPS_H
#define DROPSHIP_TEST_HTTPS_H
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

struct https_conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

struct https_resp {
	int status;        /* 0 when no response could be read */
	char *headers;     /* raw header block, NUL-terminated */
	char *body;        /* NUL-terminated */
	size_t body_len;
};

/* Connects to 127.0.0.1:port and completes the TLS handshake (certificate
 * not verified: tests use a throwaway one). Reads time out after timeout_ms.
 * Returns 0, or -1 (connection or handshake failed / timed out). */
int https_connect(struct https_conn *c, int port, int timeout_ms);
/* The same, offering a session to resume (may be NULL) and capping the
 * protocol version (0 = library default; e.g. TLS1_1_VERSION). */
int https_connect_resume(struct https_conn *c, int port, int timeout_ms, SSL_SESSION *resume,
                         int max_version);
/* The same from the local IPv4 address source (e.g. "127.0.0.2": all of
 * 127/8 is loopback on Linux), so that one test can be several clients. */
int https_connect_from(struct https_conn *c, const char *source, int port, int timeout_ms);
void https_close(struct https_conn *c);

/* Sends one request (extra_headers: "Name: value\r\n" lines, may be NULL)
 * and reads the response. Returns 0 when a response was read. */
int https_request(struct https_conn *c, const char *method, const char *path,
                  const char *extra_headers, const char *body, size_t body_len,
                  struct https_resp *r);

/* One-shot: connect, request, close. */
int https_once(int port, const char *method, const char *path, const char *extra_headers,
               const char *body, size_t body_len, struct https_resp *r);

/* Writes raw bytes / reads one response. Return 0 on success. */
int https_write(struct https_conn *c, const void *data, size_t len);
int https_read_response(struct https_conn *c, struct https_resp *r);

/* True when the peer has closed the connection (read returns EOF/error
 * within timeout_ms). */
int https_closed_by_peer(struct https_conn *c, int timeout_ms);

/* Copies header `name`'s value into buf; returns buf or NULL when absent. */
const char *https_header(const struct https_resp *r, const char *name, char *buf, size_t cap);
void https_resp_free(struct https_resp *r);

/* Standard Webhooks headers (plus Content-Type: application/json) for body,
 * signed with secret at timestamp ts under message id msg_id. */
void https_webhook_headers(const char *secret, const char *msg_id, int64_t ts,
                           const char *body, char *out, size_t cap);

/* One-shot POST of body to path, with those headers: signed with secret at
 * ts under msg_id (NULL: a fresh id "msg_test_PID_N", safe from any thread).
 * Returns 0 when a response was read. */
int https_post_signed(int port, const char *path, const char *secret, const char *msg_id, int64_t ts,
                      const char *body, struct https_resp *r);

#endif

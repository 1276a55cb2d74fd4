/* client: outbound HTTPS requests on a worker's event loop (evhttp over
 * bufferevent_openssl). Peer verification is always on (CA file or the
 * system bundle; the host name, or an IP literal's address, checked against
 * the certificate; SNI sent for names). A name is resolved asynchronously,
 * an IP literal ([::1] included) is used as it is, and the connection is
 * made to the address that passed the private-address rule
 * (docs/dispatch.md), so a DNS answer cannot change between the check and
 * the connect. Idle keep-alive connections are reused per (host, port).
 *
 * Not thread-safe: one client per event_base. */
#ifndef DROPSHIP_CLIENT_H
#define DROPSHIP_CLIENT_H
#include <stddef.h>
#include <event2/event.h>

struct client;

struct client_options {
	const char *ca_file;        /* NULL or "" = system default */
	int allow_private;          /* allow loopback/private/link-local targets (dev, tests) */
	int timeout_ms;             /* whole request: connect, send, receive */
	size_t max_response_bytes;  /* larger bodies fail the request */
};

struct client_response {
	int status;                 /* HTTP status; 0 when no response (see error) */
	const char *error;          /* why there is no response, or NULL: the refused certificate check, the
	                               socket error, the TLS alert, the step that timed out, the policy
	                               (docs/dispatch.md, Outbound HTTPS, lists them) */
	int retryable;              /* for status 0: 1 network-ish, 0 refused by policy (bad URL, private address) */
	const char *retry_after;    /* Retry-After header or NULL */
	const char *body;           /* response body (NUL-terminated, may be ""), owned by the client */
	long latency_ms;
};

/* Called exactly once per client_post or client_request, never from inside it. */
typedef void (*client_cb)(const struct client_response *resp, void *arg);

/* NULL with a message in err. */
struct client *client_new(struct event_base *base, const struct client_options *opt,
                          char *err, size_t errlen);
/* New options (a reload): requests started later follow them. A CA file
 * that cannot be loaded leaves everything as it was: -1 with err. */
int client_set_options(struct client *c, const struct client_options *opt, char *err, size_t errlen);
/* Fails pending requests (their callbacks run) and frees. Accepts NULL. */
void client_free(struct client *c);

/* POSTs body to an https:// url with the extra headers (name, value pairs,
 * NULL-terminated; Host, Content-Type: application/json and Content-Length
 * are added). */
void client_post(struct client *c, const char *url, const char *const *headers,
                 const char *body, size_t len, client_cb cb, void *arg);

/* The same with method "GET", "POST" or "PUT" (anything else is POST). A
 * GET, and any request whose body is NULL, is sent without a body,
 * Content-Type or Content-Length; the headers given are sent as they are
 * (Authorization, X-Shopify-Access-Token...). */
void client_request(struct client *c, const char *method, const char *url, const char *const *headers,
                    const char *body, size_t len, client_cb cb, void *arg);

/* Requests in flight. */
int client_inflight(const struct client *c);

#endif

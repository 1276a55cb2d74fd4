/* dropship-platform-stub: a Shopify and WooCommerce Admin API stand-in for
 * demos and tests (docs/storefronts.md, Trying it by hand). It answers the
 * calls dropship makes for shipped parcels as the platforms document them,
 * from the example responses in tests/fixtures/, keeps the orders it was
 * given and what was done to them, and logs every call it took. The files:
 *   main.c       command line, the listener, HTTP/1.1 over TLS, one
 *                connection at a time (each answer closes it)
 *   platforms.c  the orders, the Shopify GraphQL and WooCommerce REST
 *                answers, the faults asked for, the call log */
#ifndef DROPSHIP_PLATFORM_STUB_H
#define DROPSHIP_PLATFORM_STUB_H
#include <stddef.h>
#include <jansson.h>

#define STUB_NAME "dropship-platform-stub"

/* What the command line says. */
struct stub_opts {
	const char *listen;
	const char *tls_cert, *tls_key;
	const char *fixtures;          /* folder of the example responses */
	const char *shopify_token;     /* the X-Shopify-Access-Token it accepts */
	const char *woo_key, *woo_secret; /* the Basic credentials it accepts */
	int throttle;                  /* the first N GraphQL calls are THROTTLED */
	int lose_creates;              /* the first N fulfillmentCreate are applied, then unanswered */
	int user_errors;               /* every fulfillmentCreate answers userErrors */
	int locations;                 /* Shopify: the order's lines spread over this many locations (1-9) */
	const char *orders[16];        /* order bodies to load at start (--order FILE) */
	size_t norders;
};

/* One call taken. */
struct stub_request {
	const char *method;
	const char *path;              /* with the query */
	const char *token;             /* X-Shopify-Access-Token, or NULL */
	const char *authorization;     /* Authorization, or NULL */
	const char *body;              /* "" when none */
};

/* The answer to send: status and a JSON body (owned: json_decref'd by the
 * caller), or lose = 1 to close the connection without one. */
struct stub_answer {
	int status;
	json_t *body;
	const char *retry_after;       /* a Retry-After header, or NULL */
	int lose;
};

struct stub;

/* Loads the fixtures. NULL with a message in err. */
struct stub *stub_new(const struct stub_opts *o, char *err, size_t errlen);
void stub_free(struct stub *s);
/* Takes an order body (Shopify's or WooCommerce's, told apart by its
 * fields) as the platform's own. 0, or -1 with a message in err. */
int stub_add_order(struct stub *s, const char *body, char *err, size_t errlen);
/* Answers one call and logs it. */
void stub_handle(struct stub *s, const struct stub_request *req, struct stub_answer *a);

#endif

/* platform: what dropship tells a storefront platform about a parcel, and
 * what the platform's answers mean (docs/storefronts.md, Shipments).
 *
 * One outbox message (platform.fulfillment or platform.completed) is a
 * short exchange: look at what the platform has, then create only what is
 * missing, so that a retry after a lost response creates nothing twice.
 *   Shopify (Admin GraphQL):  fulfillment_orders (query) → fulfillment_create
 *   WooCommerce (REST v3):    notes (GET) → note_create (POST), for a parcel;
 *                             order (GET) → order_complete (PUT), at the end.
 * platform_exchange_request builds the HTTP request of the current step;
 * platform_exchange_take reads its answer and says whether another step
 * follows, the message is done, should be tried again later, or failed for
 * good. Pure: no I/O, no clock; the caller sends and retries.
 *
 * Carrier names are normalised to the companies the platforms know
 * (platform_carrier) and a tracking URL is built for the big carriers when
 * the supplier gave none (platform_tracking_url). */
#ifndef DROPSHIP_PLATFORM_H
#define DROPSHIP_PLATFORM_H
#include <stddef.h>
#include <jansson.h>

#define PLATFORM_REF_MAX 128
/* Shopify locations one parcel may be fulfilled from (one fulfillmentCreate each). */
#define PLATFORM_LOCATIONS_MAX 8

enum platform_kind {
	PLATFORM_SHOPIFY,
	PLATFORM_WOOCOMMERCE,
};

/* The steps of an exchange, in the order they may run. */
#define PLATFORM_STEPS(X) \
	X(PLATFORM_STEP_FULFILLMENT_ORDERS, "fulfillment_orders") /* Shopify: the order's fulfillment orders */ \
	X(PLATFORM_STEP_FULFILLMENT_CREATE, "fulfillment_create") /* Shopify: fulfillmentCreate */ \
	X(PLATFORM_STEP_NOTES, "notes")                           /* WooCommerce: the order's customer notes */ \
	X(PLATFORM_STEP_NOTE_CREATE, "note_create")               /* WooCommerce: add the parcel's note */ \
	X(PLATFORM_STEP_ORDER, "order")                           /* WooCommerce: the order's status */ \
	X(PLATFORM_STEP_ORDER_COMPLETE, "order_complete")         /* WooCommerce: status completed */

#define PLATFORM_STEP_ENUM(id, name) id,
enum platform_step {
	PLATFORM_STEPS(PLATFORM_STEP_ENUM)
	PLATFORM_STEP_MAX
};
#undef PLATFORM_STEP_ENUM

/* The name of a step, as outbox_steps.action keeps it. */
const char *platform_step_name(enum platform_step s);

/* One line of a parcel. */
struct platform_line {
	int line;                  /* dropship's line number */
	const char *line_item_id;  /* the platform's line item id; NULL when intake did not keep one */
	const char *sku;           /* NULL when none */
	const char *title;         /* NULL when none */
	int quantity;
};

/* A platform message's body, read. Strings point into root or buf. */
struct platform_msg {
	enum platform_kind platform;
	int completed;             /* platform.completed: the last line shipped */
	const char *order_id;      /* the platform's order id (the store's external id) */
	const char *carrier;       /* normalised (platform_carrier); NULL for completed */
	const char *number;        /* tracking number; NULL for completed */
	const char *url;           /* as given, else built for a known carrier, else NULL */
	int notify_customer;       /* Shopify: notifyCustomer */
	struct platform_line *lines;
	size_t nlines;
	json_t *root;
	char url_buf[512];
};

/* The company the platforms know for carrier (case, spaces and punctuation
 * ignored: "ups", "Fed Ex", "DHL" → "UPS", "FedEx", "DHL Express"), or
 * carrier itself when none matches. */
const char *platform_carrier(const char *carrier);

/* A tracking URL for a known carrier (any spelling platform_carrier knows)
 * and number into buf. Returns 1, or 0 when the carrier has none or the
 * number is not plain letters, digits and '-'. */
int platform_tracking_url(const char *carrier, const char *number, char *buf, size_t cap);

/* Reads the body of a message of kind ("platform.fulfillment" or
 * "platform.completed"). Returns 0, or -1 with a reason in err (m is then
 * empty and needs no free). */
int platform_msg_parse(const char *kind, const char *payload, struct platform_msg *m, char *err, size_t errlen);
void platform_msg_free(struct platform_msg *m);

/* The text of the WooCommerce customer note for a parcel (malloc'd). */
char *platform_note_text(const struct platform_msg *m);

/* One HTTP request of a step. Every string is owned by the struct. */
struct platform_request {
	const char *method;        /* "GET", "POST", "PUT" */
	char *url;
	const char *path;          /* into url: path and query, for records */
	char *body;                /* NULL for GET */
	const char *headers[9];    /* name, value pairs, NULL-terminated; values point into the struct */
	char *auth;                /* the value of the credential header */
};
void platform_request_free(struct platform_request *r);

/* What the answer to a step means. */
enum platform_verdict {
	PLATFORM_NEXT,             /* go on with the next step (x->step) */
	PLATFORM_DONE,             /* nothing left to do: delivered */
	PLATFORM_RETRY,            /* try the whole message again later */
	PLATFORM_FAILED,           /* refused for good: someone must look */
};

struct platform_answer {
	enum platform_verdict verdict;
	long long min_delay_ms;    /* RETRY: wait at least this long (Shopify's throttle); 0 = the usual backoff */
	char why[512];             /* RETRY, FAILED and DONE without a change: in words */
	char ref[PLATFORM_REF_MAX]; /* the platform's id of what the step found or created, or "" */
};

/* One message's exchange. */
struct platform_exchange {
	struct platform_msg msg;
	enum platform_step step;
	char *base_url;            /* the store's platform URL, without a trailing '/' */
	char *credential;          /* Shopify: the access token; WooCommerce: "key:secret" */
	char api_version[16];      /* Shopify */
	json_t *create;            /* Shopify: the FulfillmentInput the look decided */
	int more;                  /* Shopify: the parcel has items at another location still */
	int nlocations;            /* Shopify: the locations fulfilled in this exchange */
	char locations[PLATFORM_LOCATIONS_MAX][PLATFORM_REF_MAX];
	char ref[PLATFORM_REF_MAX]; /* the last id found or created */
};

/* Starts the exchange of a message of kind with that payload, for a store
 * whose platform is at base_url (https://...) with credential. Returns 0, or
 * -1 with why in err (nothing to free): such a message can never be sent. */
int platform_exchange_init(struct platform_exchange *x, const char *kind, const char *payload,
                           const char *base_url, const char *credential, const char *shopify_api_version,
                           char *err, size_t errlen);
void platform_exchange_free(struct platform_exchange *x);

/* The request of the current step into r (free it with platform_request_free). */
void platform_exchange_request(const struct platform_exchange *x, struct platform_request *r);

/* Takes the answer to the current step: HTTP status (> 0) and body. NEXT
 * moves x to the next step. A 429, 408 or 5xx is RETRY (the caller honours
 * Retry-After); another 4xx, 3xx or 1xx is FAILED. */
void platform_exchange_take(struct platform_exchange *x, int status, const char *body, struct platform_answer *a);

#endif

/* order: reads and validates a storefront webhook (docs/api.md) into a
 * normalized struct: the native format, Shopify's and WooCommerce's order
 * webhooks. Pure: JSON text in, struct or error out. Unknown fields are
 * ignored and null counts as absent, since storefronts add fields and write
 * null for values they lack. Platform payloads are read leniently: only what
 * routing and shipping need is required; an optional field that does not
 * fit is left out (the raw payload keeps it). */
#ifndef DROPSHIP_ORDER_H
#define DROPSHIP_ORDER_H
#include <stddef.h>
#include <jansson.h>

#define ORDER_MAX_ITEMS 500
#define ORDER_MAX_ID 128
#define ORDER_MAX_SKU 128
#define ORDER_MAX_QUANTITY 10000

enum order_event {
	ORDER_EVENT_CREATED,    /* "order.created" */
	ORDER_EVENT_CANCELLED,  /* "order.cancelled" */
	ORDER_EVENT_IGNORED,    /* a platform event that changes nothing (see ignored) */
};

struct order_item {
	const char *sku;         /* NULL: a platform line without a SKU (unroutable, no_sku) */
	int quantity;
	const char *unit_price;  /* canonical decimal text, 2 to 4 fractional digits
	                          * ("12.5", 12.5 and "012.50" give "12.50"); NULL if absent */
	const char *title;       /* NULL if absent */
	const char *supplier_hint; /* reserved; NULL */
	const char *variant_id;  /* the platform's variant/product id as text; NULL if absent */
	const char *line_item_id; /* the platform's id of the line (line_items[].id) as text; NULL if absent
	                           * (native orders): a parcel is matched to the platform's lines by it */
	int requires_shipping;   /* 1 unless the platform says the line ships nothing */
};

/* Every field NULL if absent, "" kept as sent; country is upper-case
 * ISO 3166-1 alpha-2 (any case accepted). */
struct order_address {
	const char *name, *line1, *line2, *city, *region, *postal_code, *country, *phone;
};

/* All strings point into `root` (or into `strings`), owned by the struct;
 * release everything with order_free(). */
struct order {
	enum order_event event;
	const char *external_id;   /* as sent; an integer id as its decimal text */
	const char *name;          /* the platform's order name ("#1001"); NULL if absent */
	const char *ignored;       /* ORDER_EVENT_IGNORED: why, as a short snake_case word */
	const char *currency;      /* upper-case ISO 4217 (any case accepted); NULL for cancellations */
	const char *placed_at;     /* RFC 3339 text as sent; NULL if absent */
	const char *email;         /* NULL if absent or "" */
	const char *customer_name;
	struct order_address ship;
	int has_ship;              /* shipping_address present (always, for native) */
	struct order_item *items;
	size_t nitems;
	json_t *root;              /* the parsed document */
	json_t *strings;           /* normalized copies (array) kept alive here */
};

/* Error: code as docs/api.md lists them, the JSON path at fault, a message. */
struct order_error {
	const char *code;          /* "invalid_json" (400) or "invalid_field" (422) */
	char field[160];           /* e.g. "order.items[2].quantity"; "" when none
	                            * (invalid_json, or a root that is not an object) */
	char message[256];         /* printable ASCII, without the field name */
};

/* Parses and validates a native body. Returns 0 and fills o, or -1 and fills err
 * (o is then empty and needs no free). */
int order_parse_native(const char *body, size_t len, struct order *o, struct order_error *err);

/* Shopify order webhook; topic from X-Shopify-Topic: "orders/create" or
 * "orders/cancelled" (others are ORDER_EVENT_IGNORED). Error fields are
 * paths in Shopify's order ("line_items[0].quantity"), or the header name. */
int order_parse_shopify(const char *body, size_t len, const char *topic, struct order *o,
                        struct order_error *err);

/* WooCommerce order webhook; topic from X-WC-Webhook-Topic: "order.created"
 * or "order.updated". Status "cancelled" is a cancellation; "processing"
 * and "completed" (paid) are orders to route; any other status (pending
 * payment, on hold, failed...) is ORDER_EVENT_IGNORED until an update
 * says the order is paid. */
int order_parse_woocommerce(const char *body, size_t len, const char *topic, struct order *o,
                            struct order_error *err);

/* True for the unsigned ping WooCommerce sends when a webhook is created:
 * a form body "webhook_id=<digits>". */
int order_is_woocommerce_ping(const char *body, size_t len);

/* Releases what an order_parse_* allocated. Accepts a zeroed struct. */
void order_free(struct order *o);

/* A money amount as canonical decimal text in canon ("12.50"): a decimal
 * string or a JSON number, not negative, at most 16 integer and 4
 * fractional digits. Returns 0; -1 when v is no such amount; -2 when v is
 * a JSON real with more digits than a double keeps exactly. */
int order_price(const json_t *v, char canon[32]);

/* True when s is an RFC 3339 timestamp PostgreSQL accepts. */
int order_valid_timestamp(const char *s);

/* True when code is an ISO 3166-1 alpha-2 country code (upper case). */
int order_valid_country(const char *code);
/* True when code is an active ISO 4217 currency code (upper case). */
int order_valid_currency(const char *code);

#endif

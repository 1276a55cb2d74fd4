/* order: reads and validates a native storefront webhook (contract 5.1)
 * into a normalized struct. Pure: JSON text in, struct or error out.
 * Unknown fields are ignored and null counts as absent, since storefronts
 * add fields and write null for values they lack. */
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
};

struct order_item {
	const char *sku;
	int quantity;
	const char *unit_price;  /* canonical decimal text, 2 to 4 fractional digits
	                          * ("12.5", 12.5 and "012.50" give "12.50"); NULL if absent */
	const char *title;       /* NULL if absent */
	const char *supplier_hint; /* reserved; NULL */
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
	const char *currency;      /* upper-case ISO 4217 (any case accepted); NULL for cancellations */
	const char *placed_at;     /* RFC 3339 text as sent; NULL if absent */
	const char *email;         /* NULL if absent or "" */
	const char *customer_name;
	struct order_address ship;
	int has_ship;              /* shipping_address present */
	struct order_item *items;
	size_t nitems;
	json_t *root;              /* the parsed document */
	json_t *strings;           /* normalized copies (array) kept alive here */
};

/* Error: code per contract section 3, the JSON path at fault, a message. */
struct order_error {
	const char *code;          /* "invalid_json" (400), "invalid_field" (422), or
	                            * "internal_error" when out of memory */
	char field[160];           /* e.g. "order.items[2].quantity"; "" when none
	                            * (invalid_json, or a root that is not an object) */
	char message[256];         /* printable ASCII, without the field name */
};

/* Parses and validates body. Returns 0 and fills o, or -1 and fills err
 * (o is then empty and needs no free). */
int order_parse_native(const char *body, size_t len, struct order *o, struct order_error *err);

/* Releases what order_parse_native allocated. Accepts a zeroed struct. */
void order_free(struct order *o);

/* True when s is an RFC 3339 timestamp PostgreSQL accepts. */
int order_valid_timestamp(const char *s);

/* True when code is an ISO 3166-1 alpha-2 country code (upper case). */
int order_valid_country(const char *code);
/* True when code is an active ISO 4217 currency code (upper case). */
int order_valid_currency(const char *code);

#endif

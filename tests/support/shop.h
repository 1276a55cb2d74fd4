/* shop: a native store's side of the end-to-end tests: the order bodies it
 * sends and their signed delivery to dropshipd. */
#ifndef DROPSHIP_TEST_SHOP_H
#define DROPSHIP_TEST_SHOP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "support/https.h"

/* One line of an order. */
struct shop_line {
	const char *sku;
	int quantity;
	const char *unit_price;   /* decimal text, e.g. "12.50"; NULL: left out */
	const char *title;        /* NULL: left out */
};

/* A native order.created body (compact JSON, malloc'd; caller frees):
 * order id in USD, shipped to 1 Main St, Austin, country, one item per line.
 * detailed adds what the example order of docs/api.md has besides:
 * placed_at, the customer, and the address's name, region and postal code. */
char *shop_order_json(const char *id, const char *country, const struct shop_line *lines, size_t n,
                      bool detailed);

/* POSTs body to store's webhook endpoint, signed with secret at ts under a
 * fresh delivery id (see https_post_signed). Returns 0 when a response was read. */
int shop_post(int port, const char *store, const char *secret, int64_t ts, const char *body,
              struct https_resp *r);

/* Sends a native order (shop_order_json, to US) signed now: its 202 answer
 * parsed (the caller json_decref's it), or NULL after saying on stderr
 * what came instead. */
json_t *shop_place(int port, const char *store, const char *secret, const char *id, const struct shop_line *lines,
                   size_t n);

#endif

/* libFuzzer harness for the order parsers (native, Shopify, WooCommerce; the
 * first byte picks one and its topic: seeds start with A to E). Not part of
 * `make test`; `make fuzz` builds it with ASan and UBSan and runs it from the
 * seeds in tests/fuzz/corpus/fuzz_order/.
 * Besides memory errors it traps when a result breaks the header's promises. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "order/order.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok)
{
	if (!ok)
		abort();
}

/* What a caller relies on after a successful parse (platform: Shopify or
 * WooCommerce, where the address and SKUs may be absent). */
static void check_order(const struct order *o, int platform)
{
	if (o->event == ORDER_EVENT_IGNORED) {
		require(platform && o->ignored && !o->items && !o->external_id);
		return;
	}
	require(o->external_id && *o->external_id && strlen(o->external_id) <= ORDER_MAX_ID);
	if (o->event == ORDER_EVENT_CANCELLED) {
		require(!o->items && o->nitems == 0 && !o->has_ship && !o->currency);
		return;
	}
	require(o->event == ORDER_EVENT_CREATED);
	require(order_valid_currency(o->currency));
	require(o->has_ship || platform);
	if (o->has_ship) {
		require(o->ship.line1 && *o->ship.line1 && o->ship.city && *o->ship.city);
		require(order_valid_country(o->ship.country));
	} else {
		require(!o->ship.country);
	}
	require(o->nitems >= 1 && o->nitems <= ORDER_MAX_ITEMS && o->items);
	for (size_t i = 0; i < o->nitems; i++) {
		const struct order_item *it = &o->items[i];
		require((platform && !it->sku) || (it->sku && *it->sku && strlen(it->sku) <= ORDER_MAX_SKU));
		require(it->requires_shipping == 0 || it->requires_shipping == 1);
		require(it->quantity >= 1 && it->quantity <= ORDER_MAX_QUANTITY);
		if (it->unit_price) {
			const char *dot = strchr(it->unit_price, '.');
			require(dot && dot - it->unit_price <= 16 && strlen(dot + 1) >= 2 &&
			        strlen(dot + 1) <= 4);
			require(strspn(it->unit_price, "0123456789.") == strlen(it->unit_price));
		}
	}
	if (o->email && !platform)
		require(strchr(o->email, '@') != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct order zero;
	static const char *const topics[] = { NULL, "orders/create", "orders/cancelled",
	                                      "order.created", "order.updated" };
	struct order o;
	struct order_error err;
	if (size == 0)
		return 0;
	unsigned pick = data[0] % 5;
	const char *body = (const char *)data + 1, *topic = topics[pick];
	size--;
	int rc = pick == 0 ? order_parse_native(body, size, &o, &err)
	         : pick <= 2 ? order_parse_shopify(body, size, topic, &o, &err)
	                     : order_parse_woocommerce(body, size, topic, &o, &err);
	if (rc == 0) {
		check_order(&o, pick != 0);
	} else {
		require(memcmp(&o, &zero, sizeof o) == 0);
		require(err.code && (strcmp(err.code, "invalid_json") == 0 ||
		                     strcmp(err.code, "invalid_field") == 0 ||
		                     strcmp(err.code, "internal_error") == 0));
		require(memchr(err.field, '\0', sizeof err.field) && err.message[0]);
		for (const char *c = err.message; *c; c++)
			require(*c >= 0x20 && *c <= 0x7e);
	}
	order_free(&o);
	return 0;
}

/* libFuzzer harness for order_parse_native. Not part of `make test`; build with
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinternal \
 *     internal/order/order.c tests/fuzz/fuzz_order.c $(pkg-config --cflags --libs jansson)
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

/* What a caller relies on after a successful parse. */
static void check_order(const struct order *o)
{
	require(o->external_id && *o->external_id && strlen(o->external_id) <= ORDER_MAX_ID);
	if (o->event == ORDER_EVENT_CANCELLED) {
		require(!o->items && o->nitems == 0 && !o->has_ship && !o->currency);
		return;
	}
	require(o->event == ORDER_EVENT_CREATED);
	require(order_valid_currency(o->currency));
	require(o->has_ship && o->ship.line1 && *o->ship.line1 && o->ship.city && *o->ship.city);
	require(order_valid_country(o->ship.country));
	require(o->nitems >= 1 && o->nitems <= ORDER_MAX_ITEMS && o->items);
	for (size_t i = 0; i < o->nitems; i++) {
		const struct order_item *it = &o->items[i];
		require(it->sku && *it->sku && strlen(it->sku) <= ORDER_MAX_SKU);
		require(it->quantity >= 1 && it->quantity <= ORDER_MAX_QUANTITY);
		if (it->unit_price) {
			const char *dot = strchr(it->unit_price, '.');
			require(dot && dot - it->unit_price <= 16 && strlen(dot + 1) >= 2 &&
			        strlen(dot + 1) <= 4);
			require(strspn(it->unit_price, "0123456789.") == strlen(it->unit_price));
		}
	}
	if (o->email)
		require(strchr(o->email, '@') != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct order zero;
	struct order o;
	struct order_error err;
	if (order_parse_native((const char *)data, size, &o, &err) == 0) {
		check_order(&o);
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

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <jansson.h>

#include "support/shop.h"

char *shop_order_json(const char *id, const char *country, const struct shop_line *lines, size_t n,
                      bool detailed)
{
	json_t *items = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *item = json_pack("{s:s, s:i}", "sku", lines[i].sku, "quantity", lines[i].quantity);
		if (lines[i].unit_price)
			json_object_set_new(item, "unit_price", json_string(lines[i].unit_price));
		if (lines[i].title)
			json_object_set_new(item, "title", json_string(lines[i].title));
		json_array_append_new(items, item);
	}
	json_t *o;
	if (detailed)
		o = json_pack("{s:s, s:{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:o}}",
		        "type", "order.created", "order", "id", id, "currency", "USD",
		        "placed_at", "2026-11-22T10:00:00Z",
		        "customer", "email", "ann@example.com", "name", "Ann Lee",
		        "shipping_address", "name", "Ann Lee", "line1", "1 Main St", "city", "Austin",
		        "region", "TX", "postal_code", "78701", "country", country,
		        "items", items);
	else
		o = json_pack("{s:s, s:{s:s, s:s, s:{s:s, s:s, s:s}, s:o}}", "type", "order.created",
		        "order", "id", id, "currency", "USD", "shipping_address", "line1", "1 Main St",
		        "city", "Austin", "country", country, "items", items);
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

int shop_post(int port, const char *store, const char *secret, int64_t ts, const char *body,
              struct https_resp *r)
{
	char path[128];
	snprintf(path, sizeof path, "/v1/stores/%s/webhooks", store);
	return https_post_signed(port, path, secret, NULL, ts, body, r);
}

json_t *shop_place(int port, const char *store, const char *secret, const char *id, const struct shop_line *lines,
                   size_t n)
{
	char *body = shop_order_json(id, "US", lines, n, false);
	struct https_resp r;
	json_t *answer = NULL;
	if (shop_post(port, store, secret, (int64_t)time(NULL), body, &r) == 0 && r.status == 202)
		answer = json_loads(r.body, 0, NULL);
	else
		fprintf(stderr, "order %s refused: %d %s\n", id, r.status, r.body ? r.body : "");
	https_resp_free(&r);
	free(body);
	return answer;
}

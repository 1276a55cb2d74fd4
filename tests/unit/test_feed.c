/* feed_parse: what a stock feed's body may hold, and the field named when
 * it breaks a rule. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed/feed.h"
#include "support/harness.h"

#define T "\"as_of\": \"2026-11-22T10:00:00Z\""

/* Bodies refused, with the status, code and field expected. */
static void test_refused(void)
{
	static const struct {
		const char *body;
		int status;
		const char *code, *field, *message;     /* message: a part of it */
	} cases[] = {
		{ "", 400, "invalid_json", "", NULL },
		{ "{\"as_of\": 1,", 400, "invalid_json", "", NULL },
		{ "{" T ", " T ", \"items\": []}", 400, "invalid_json", "", "duplicate" },
		{ "[]", 422, "invalid_field", "", "JSON object" },
		{ "7", 422, "invalid_field", "", "JSON object" },
		{ "{\"items\": [{\"sku\": \"A\", \"stock\": 1}]}", 422, "invalid_field", "as_of", "required" },
		{ "{\"as_of\": \"yesterday\", \"items\": []}", 422, "invalid_field", "as_of", "RFC 3339" },
		{ "{\"as_of\": \"2026-02-30T00:00:00Z\", \"items\": []}", 422, "invalid_field", "as_of", "RFC 3339" },
		{ "{\"as_of\": 1795860001, \"items\": []}", 422, "invalid_field", "as_of", "RFC 3339" },
		{ "{" T "}", 422, "invalid_field", "items", "required" },
		{ "{" T ", \"items\": {}}", 422, "invalid_field", "items", "array" },
		{ "{" T ", \"items\": []}", 422, "invalid_field", "items", "at least one" },
		{ "{" T ", \"items\": [], \"supplier\": \"acme\"}", 422, "invalid_field", "supplier", "not a field" },
		{ "{" T ", \"items\": [7]}", 422, "invalid_field", "items[0]", "object" },
		{ "{" T ", \"items\": [{\"stock\": 1}]}", 422, "invalid_field", "items[0].sku", "required" },
		{ "{" T ", \"items\": [{\"sku\": \"\", \"stock\": 1}]}", 422, "invalid_field", "items[0].sku", "1 to 128" },
		{ "{" T ", \"items\": [{\"sku\": 12, \"stock\": 1}]}", 422, "invalid_field", "items[0].sku", "string" },
		{ "{" T ", \"items\": [{\"sku\": \"A\\u0000B\", \"stock\": 1}]}", 400, "invalid_json", "", "u0000" },
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": 1}, {\"sku\": \"B\"}]}", 422, "invalid_field",
		  "items[1].stock", "required" },
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": 1}, {\"sku\": \"B\", \"stock\": 1},"
		  " {\"sku\": \"C\", \"stock\": 1}, {\"sku\": \"D\", \"stock\": -1}]}", 422, "invalid_field",
		  "items[3].stock", "must be a non-negative integer" },
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": 1.5}]}", 422, "invalid_field", "items[0].stock",
		  "non-negative integer" },
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": \"3\"}]}", 422, "invalid_field", "items[0].stock",
		  "non-negative integer" },
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": 2147483648}]}", 422, "invalid_field",
		  "items[0].stock", "at most 2147483647" },
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": 1, \"cost\": \"-1\"}]}", 422, "invalid_field",
		  "items[0].cost", "non-negative decimal" },
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": 1, \"cost\": \"1.23456\"}]}", 422, "invalid_field",
		  "items[0].cost", "4 fractional" },
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": 1, \"shipping_cost\": \"1,5\"}]}", 422,
		  "invalid_field", "items[0].shipping_cost", "decimal" },
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": 1, \"cost\": 12345678901234.56}]}", 422,
		  "invalid_field", "items[0].cost", "as a string" },
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": 1, \"lead_time_days\": 366}]}", 422,
		  "invalid_field", "items[0].lead_time_days", "at most 365" },
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": 1, \"lead_time_days\": \"2\"}]}", 422,
		  "invalid_field", "items[0].lead_time_days", "non-negative integer" },
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": 1, \"ships_to\": \"US\"}]}", 422, "invalid_field",
		  "items[0].ships_to", "\"*\"" },
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": 1, \"ships_to\": []}]}", 422, "invalid_field",
		  "items[0].ships_to", "1 to 249" },
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": 1, \"ships_to\": [\"US\", \"UK\"]}]}", 422,
		  "invalid_field", "items[0].ships_to[1]", "ISO 3166-1" },
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": 1, \"ships_to\": [\"USA\"]}]}", 422,
		  "invalid_field", "items[0].ships_to[0]", "ISO 3166-1" },
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": 1, \"stok\": 2}]}", 422, "invalid_field",
		  "items[0].stok", "not a field of an item" },
		/* the second of two is at fault, and the earliest such second */
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": 1}, {\"sku\": \"B\", \"stock\": 1},"
		  " {\"sku\": \"B\", \"stock\": 2}, {\"sku\": \"A\", \"stock\": 3}]}", 422, "invalid_field",
		  "items[2].sku", "repeats items[1].sku" },
		{ "{" T ", \"items\": [{\"sku\": \"A\", \"stock\": 1}, {\"sku\": \"B\", \"stock\": 1},"
		  " {\"sku\": \"A\", \"stock\": 2}, {\"sku\": \"A\", \"stock\": 3}]}", 422, "invalid_field",
		  "items[2].sku", "repeats items[0].sku" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct feed f;
		struct feed_error err;
		memset(&err, 0, sizeof err);
		int rc = feed_parse(cases[i].body, strlen(cases[i].body), &f, &err);
		HARNESS_CHECK(rc == -1, "case %zu: refused", i);
		HARNESS_CHECK(f.root == NULL && f.items == NULL && f.n == 0, "case %zu: nothing kept", i);
		HARNESS_CHECK(err.status == cases[i].status, "case %zu: status %d, want %d", i, err.status,
		              cases[i].status);
		HARNESS_CHECK(err.code && strcmp(err.code, cases[i].code) == 0, "case %zu: code %s", i,
		              err.code ? err.code : "(none)");
		HARNESS_CHECK(strcmp(err.field, cases[i].field) == 0, "case %zu: field '%s', want '%s'", i, err.field,
		              cases[i].field);
		HARNESS_CHECK(!cases[i].message || strstr(err.message, cases[i].message), "case %zu: message '%s'", i,
		              err.message);
	}
}

static void test_accepted(void)
{
	const char *body = "{" T ", \"items\": [{\"sku\": \"MUG-01\", \"stock\": 0},"
	                   " {\"sku\": \"TEE\", \"stock\": 2147483647, \"cost\": \"012.50\", \"shipping_cost\": 3,"
	                   "  \"lead_time_days\": 0, \"ships_to\": [\"us\", \"CA\", \"US\"]},"
	                   " {\"sku\": \"LAMP\", \"stock\": 7, \"cost\": null, \"ships_to\": \"*\","
	                   "  \"lead_time_days\": 365, \"shipping_cost\": 0.25}]}";
	struct feed f;
	struct feed_error err;
	CU_ASSERT_EQUAL_FATAL(feed_parse(body, strlen(body), &f, &err), 0);
	CU_ASSERT_STRING_EQUAL(f.as_of, "2026-11-22T10:00:00Z");
	CU_ASSERT_EQUAL_FATAL(f.n, 3);
	CU_ASSERT_STRING_EQUAL(f.items[0].sku, "MUG-01");
	CU_ASSERT_EQUAL(f.items[0].stock, 0);
	CU_ASSERT_STRING_EQUAL(f.items[0].cost, "");
	CU_ASSERT_STRING_EQUAL(f.items[0].shipping_cost, "");
	CU_ASSERT_EQUAL(f.items[0].lead_time_days, -1);
	CU_ASSERT_PTR_NULL(f.items[0].ships_to);
	CU_ASSERT_EQUAL(f.items[1].stock, 2147483647L);
	CU_ASSERT_STRING_EQUAL(f.items[1].cost, "12.50");
	CU_ASSERT_STRING_EQUAL(f.items[1].shipping_cost, "3.00");
	CU_ASSERT_EQUAL(f.items[1].lead_time_days, 0);
	CU_ASSERT_STRING_EQUAL(f.items[1].ships_to ? f.items[1].ships_to : "", "CA;US");
	CU_ASSERT_STRING_EQUAL(f.items[2].cost, "");
	CU_ASSERT_STRING_EQUAL(f.items[2].shipping_cost, "0.25");
	CU_ASSERT_EQUAL(f.items[2].lead_time_days, 365);
	CU_ASSERT_STRING_EQUAL(f.items[2].ships_to ? f.items[2].ships_to : "", "*");
	feed_free(&f);
	CU_ASSERT_PTR_NULL(f.root);
	feed_free(&f); /* twice is harmless */
}

/* A body of n items, "SKU-1".."SKU-n" (malloc'd). */
static char *items_body(size_t n)
{
	size_t cap = 64 + n * 40, w = 0;
	char *b = malloc(cap);
	w += (size_t)snprintf(b + w, cap - w, "{" T ", \"items\": [");
	for (size_t i = 1; i <= n; i++)
		w += (size_t)snprintf(b + w, cap - w, "%s{\"sku\": \"SKU-%zu\", \"stock\": %zu}", i > 1 ? "," : "", i,
		                      i % 50);
	snprintf(b + w, cap - w, "]}");
	return b;
}

static void test_item_limit(void)
{
	struct feed f;
	struct feed_error err;
	char *b = items_body(FEED_MAX_ITEMS);
	CU_ASSERT_EQUAL(feed_parse(b, strlen(b), &f, &err), 0);
	CU_ASSERT_EQUAL(f.n, FEED_MAX_ITEMS);
	CU_ASSERT_STRING_EQUAL(f.n ? f.items[FEED_MAX_ITEMS - 1].sku : "", "SKU-10000");
	feed_free(&f);
	free(b);
	b = items_body(FEED_MAX_ITEMS + 1);
	CU_ASSERT_EQUAL(feed_parse(b, strlen(b), &f, &err), -1);
	CU_ASSERT_EQUAL(err.status, 413);
	CU_ASSERT_STRING_EQUAL(err.code, "payload_too_large");
	CU_ASSERT_STRING_EQUAL(err.field, "items");
	CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "10001 items"));
	free(b);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "bodies refused, naming the field", test_refused },
		{ "a valid body, values made canonical", test_accepted },
		{ "10000 items taken, 10001 refused with 413", test_item_limit },
		{ NULL, NULL },
	};
	return harness_main("feed", NULL, NULL, tests);
}

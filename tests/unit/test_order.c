#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "order/order.h"
#include "support/harness.h"

/* The example order of docs/api.md; every table row changes one thing in it. */
static const char BASE[] =
	"{\"type\": \"order.created\", \"order\": {"
	"\"id\": \"1001\", \"currency\": \"USD\", \"placed_at\": \"2026-11-22T10:00:00Z\","
	"\"customer\": {\"email\": \"ann@example.com\", \"name\": \"Ann Lee\"},"
	"\"shipping_address\": {\"name\": \"Ann Lee\", \"line1\": \"1 Main St\", \"line2\": \"\","
	" \"city\": \"Austin\", \"region\": \"TX\", \"postal_code\": \"78701\", \"country\": \"US\","
	" \"phone\": \"+15125550100\"},"
	"\"items\": [{\"sku\": \"MUG-01\", \"quantity\": 2, \"unit_price\": \"12.50\", \"title\": \"Mug\"}]"
	"}}";

#define CHECK HARNESS_CHECK

static const char *str_or_null(const char *s)
{
	return s ? s : "(null)";
}

static int str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Sets, or with value NULL removes, the member at a path such as
 * "order.items[0].sku". Takes value. Returns -1 when the path is absent. */
static int set_path(json_t *doc, const char *path, json_t *value)
{
	char buf[128];
	snprintf(buf, sizeof buf, "%s", path);
	json_t *cur = doc;
	for (char *seg = buf;;) {
		char *dot = strchr(seg, '.');
		if (dot)
			*dot = '\0';
		char *br = strchr(seg, '[');
		long idx = -1;
		if (br) {
			*br = '\0';
			idx = strtol(br + 1, NULL, 10);
		}
		json_t *parent = cur;
		cur = json_object_get(parent, seg);
		if (idx >= 0) {
			parent = cur;
			cur = json_array_get(parent, (size_t)idx);
		}
		if (!dot) {
			if (idx >= 0)
				return value ? json_array_set_new(parent, (size_t)idx, value)
				             : json_array_remove(parent, (size_t)idx);
			if (value)
				return json_object_set_new(parent, seg, value);
			return json_object_del(parent, seg);
		}
		if (!cur) {
			json_decref(value);
			return -1;
		}
		seg = dot + 1;
	}
}

/* BASE with path set to the JSON text value (NULL: removed); free() it. */
static char *body_with(const char *path, const char *value)
{
	json_t *doc = json_loads(BASE, 0, NULL);
	json_t *v = value ? json_loads(value, JSON_DECODE_ANY, NULL) : NULL;
	CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
	CU_ASSERT_FATAL(!value || v);
	CU_ASSERT_FATAL(set_path(doc, path, v) == 0);
	char *s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	return s;
}

static int is_zeroed(const struct order *o)
{
	static const struct order zero;
	return memcmp(o, &zero, sizeof zero) == 0;
}

/* Parses body (len bytes) and checks it fails with code and field. */
static void expect_error(const char *name, const char *body, size_t len, const char *code,
                         const char *field)
{
	struct order o;
	struct order_error err;
	memset(&o, 0xa5, sizeof o); /* the parser must not rely on a zeroed struct */
	int rc = order_parse_native(body, len, &o, &err);
	CHECK(rc == -1, "%s: accepted", name);
	if (rc != -1) {
		order_free(&o);
		return;
	}
	CHECK(str_eq(err.code, code), "%s: code %s, want %s", name, str_or_null(err.code), code);
	CHECK(strcmp(err.field, field) == 0, "%s: field '%s', want '%s' (%s)", name, err.field, field,
	      err.message);
	CHECK(err.message[0] != '\0', "%s: empty message", name);
	CHECK(is_zeroed(&o), "%s: struct not zeroed after an error", name);
	order_free(&o);
}

static void expect_field_error(const char *name, const char *body, const char *field)
{
	expect_error(name, body, strlen(body), "invalid_field", field);
}

/* Parses BASE with one change; expects success and leaves the result in o. */
static int parse_with(const char *path, const char *value, struct order *o)
{
	char *body = body_with(path, value);
	struct order_error err;
	int rc = order_parse_native(body, strlen(body), o, &err);
	CHECK(rc == 0, "%s=%s: rejected at %s: %s", path, str_or_null(value),
	      rc ? err.field : "", rc ? err.message : "");
	free(body);
	return rc;
}

/* BASE with path set to value (NULL: removed) must parse. */
static void expect_accepted(const char *path, const char *value)
{
	struct order o;
	if (parse_with(path, value, &o) == 0)
		order_free(&o);
}

/* BASE with path set to value must be refused as invalid_field at field. */
static void expect_rejected(const char *path, const char *value, const char *field)
{
	char name[160];
	snprintf(name, sizeof name, "%s=%s", path, str_or_null(value));
	char *body = body_with(path, value);
	expect_field_error(name, body, field);
	free(body);
}

/* Marks a row whose value must be refused, at the row's own path. */
static const char REJECTED[] = "(rejected)";

/* Reads the normalized result a table checks. */
typedef const char *(*order_getter)(const struct order *o);

static const char *get_id(const struct order *o) { return o->external_id; }
static const char *get_currency(const struct order *o) { return o->currency; }
static const char *get_country(const struct order *o) { return o->ship.country; }
static const char *get_placed_at(const struct order *o) { return o->placed_at; }
static const char *get_email(const struct order *o) { return o->email; }
static const char *get_line2(const struct order *o) { return o->ship.line2; }
static const char *get_title(const struct order *o) { return o->items[0].title; }
static const char *get_price(const struct order *o) { return o->items[0].unit_price; }

/* BASE with path set to value: REJECTED wants it refused at path, anything
 * else (NULL included) wants it parsed with get() returning that. */
static void expect_text(const char *path, const char *value, const char *want, order_getter get)
{
	struct order o;
	if (want == REJECTED) {
		expect_rejected(path, value, path);
	} else if (parse_with(path, value, &o) == 0) {
		CHECK(str_eq(get(&o), want), "%s=%s: got %s, want %s", path, str_or_null(value),
		      str_or_null(get(&o)), str_or_null(want));
		order_free(&o);
	}
}

static void test_documented_example(void)
{
	struct order o;
	struct order_error err;
	CU_ASSERT_EQUAL_FATAL(order_parse_native(BASE, strlen(BASE), &o, &err), 0);
	CU_ASSERT_EQUAL(o.event, ORDER_EVENT_CREATED);
	CU_ASSERT_STRING_EQUAL(o.external_id, "1001");
	CU_ASSERT_STRING_EQUAL(o.currency, "USD");
	CU_ASSERT_STRING_EQUAL(o.placed_at, "2026-11-22T10:00:00Z");
	CU_ASSERT_STRING_EQUAL(o.email, "ann@example.com");
	CU_ASSERT_STRING_EQUAL(o.customer_name, "Ann Lee");
	CU_ASSERT_EQUAL(o.has_ship, 1);
	CU_ASSERT_STRING_EQUAL(o.ship.name, "Ann Lee");
	CU_ASSERT_STRING_EQUAL(o.ship.line1, "1 Main St");
	CU_ASSERT_STRING_EQUAL(o.ship.line2, "");
	CU_ASSERT_STRING_EQUAL(o.ship.city, "Austin");
	CU_ASSERT_STRING_EQUAL(o.ship.region, "TX");
	CU_ASSERT_STRING_EQUAL(o.ship.postal_code, "78701");
	CU_ASSERT_STRING_EQUAL(o.ship.country, "US");
	CU_ASSERT_STRING_EQUAL(o.ship.phone, "+15125550100");
	CU_ASSERT_EQUAL_FATAL(o.nitems, 1);
	CU_ASSERT_STRING_EQUAL(o.items[0].sku, "MUG-01");
	CU_ASSERT_EQUAL(o.items[0].quantity, 2);
	CU_ASSERT_STRING_EQUAL(o.items[0].unit_price, "12.50");
	CU_ASSERT_STRING_EQUAL(o.items[0].title, "Mug");
	CU_ASSERT_PTR_NULL(o.items[0].supplier_hint);
	CU_ASSERT_PTR_NOT_NULL(o.root);
	order_free(&o);
	CU_ASSERT(is_zeroed(&o));
	order_free(&o); /* a freed struct is zeroed, so freeing again is harmless */
	order_free(NULL);
}

static void test_cancellation(void)
{
	static const char *const bodies[] = {
		"{\"type\":\"order.cancelled\",\"order\":{\"id\":\"1001\"}}",
		/* whatever else a cancellation carries is not validated */
		"{\"type\":\"order.cancelled\",\"order\":{\"id\":\"1001\",\"currency\":\"zzz\","
		"\"items\":\"none\",\"shipping_address\":5,\"placed_at\":\"soon\"},\"extra\":[1]}",
	};
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		struct order o;
		struct order_error err;
		int rc = order_parse_native(bodies[i], strlen(bodies[i]), &o, &err);
		CHECK(rc == 0, "cancellation %zu rejected: %s %s", i, err.field, err.message);
		if (rc)
			continue;
		CU_ASSERT_EQUAL(o.event, ORDER_EVENT_CANCELLED);
		CU_ASSERT_STRING_EQUAL(o.external_id, "1001");
		CU_ASSERT_PTR_NULL(o.currency);
		CU_ASSERT_PTR_NULL(o.placed_at);
		CU_ASSERT_PTR_NULL(o.items);
		CU_ASSERT_EQUAL(o.nitems, 0);
		CU_ASSERT_EQUAL(o.has_ship, 0);
		order_free(&o);
	}
	expect_field_error("cancel without id", "{\"type\":\"order.cancelled\",\"order\":{}}",
	                   "order.id");
	expect_field_error("cancel without order", "{\"type\":\"order.cancelled\"}", "order");
}

/* One row per rule: BASE with path set to value (NULL: removed) must be
 * refused as invalid_field naming field. */
static const struct reject_row {
	const char *path, *value, *field;
} reject_rows[] = {
	{ "type", NULL, "type" },
	{ "type", "null", "type" },
	{ "type", "\"order.updated\"", "type" },
	{ "type", "\"ORDER.CREATED\"", "type" },
	{ "type", "5", "type" },
	{ "order", NULL, "order" },
	{ "order", "[]", "order" },
	{ "order", "\"1001\"", "order" },
	{ "order.id", NULL, "order.id" },
	{ "order.id", "\"\"", "order.id" },
	{ "order.id", "1001.0", "order.id" },
	{ "order.id", "true", "order.id" },
	{ "order.id", "{}", "order.id" },
	{ "order.currency", NULL, "order.currency" },
	{ "order.currency", "\"\"", "order.currency" },
	{ "order.currency", "\"US\"", "order.currency" },
	{ "order.currency", "\"USDX\"", "order.currency" },
	{ "order.currency", "\"XYZ\"", "order.currency" },
	{ "order.currency", "\"HRK\"", "order.currency" },  /* historic: euro since 2023 */
	{ "order.currency", "\"DEM\"", "order.currency" },
	{ "order.currency", "\"U$D\"", "order.currency" },
	{ "order.currency", "840", "order.currency" },
	{ "order.placed_at", "\"yesterday\"", "order.placed_at" },
	{ "order.placed_at", "1764000000", "order.placed_at" },
	{ "order.customer", "[]", "order.customer" },
	{ "order.customer", "\"Ann\"", "order.customer" },
	{ "order.customer.email", "\"ann\"", "order.customer.email" },
	{ "order.customer.email", "\"@example.com\"", "order.customer.email" },
	{ "order.customer.email", "\"ann@\"", "order.customer.email" },
	{ "order.customer.email", "\"ann@b@example.com\"", "order.customer.email" },
	{ "order.customer.email", "5", "order.customer.email" },
	{ "order.customer.name", "[\"Ann\"]", "order.customer.name" },
	{ "order.shipping_address", NULL, "order.shipping_address" },
	{ "order.shipping_address", "null", "order.shipping_address" },
	{ "order.shipping_address", "\"1 Main St\"", "order.shipping_address" },
	{ "order.shipping_address.name", "5", "order.shipping_address.name" },
	{ "order.shipping_address.line1", NULL, "order.shipping_address.line1" },
	{ "order.shipping_address.line1", "\"\"", "order.shipping_address.line1" },
	{ "order.shipping_address.line2", "false", "order.shipping_address.line2" },
	{ "order.shipping_address.city", NULL, "order.shipping_address.city" },
	{ "order.shipping_address.city", "\"\"", "order.shipping_address.city" },
	{ "order.shipping_address.region", "{}", "order.shipping_address.region" },
	{ "order.shipping_address.postal_code", "78701", "order.shipping_address.postal_code" },
	{ "order.shipping_address.country", NULL, "order.shipping_address.country" },
	{ "order.shipping_address.country", "\"\"", "order.shipping_address.country" },
	{ "order.shipping_address.country", "\"USA\"", "order.shipping_address.country" },
	{ "order.shipping_address.country", "\"U\"", "order.shipping_address.country" },
	{ "order.shipping_address.country", "\"ZZ\"", "order.shipping_address.country" },
	{ "order.shipping_address.country", "\"UK\"", "order.shipping_address.country" },
	{ "order.shipping_address.country", "\"XK\"", "order.shipping_address.country" },
	{ "order.shipping_address.country", "\"U1\"", "order.shipping_address.country" },
	{ "order.shipping_address.country", "840", "order.shipping_address.country" },
	{ "order.shipping_address.phone", "15125550100", "order.shipping_address.phone" },
	{ "order.items", NULL, "order.items" },
	{ "order.items", "[]", "order.items" },
	{ "order.items", "{}", "order.items" },
	{ "order.items", "\"MUG-01\"", "order.items" },
	{ "order.items", "[5]", "order.items[0]" },
	{ "order.items", "[null]", "order.items[0]" },
	{ "order.items",
	  "[{\"sku\":\"A\",\"quantity\":1},{\"sku\":\"B\",\"quantity\":2},{\"sku\":\"C\",\"quantity\":0}]",
	  "order.items[2].quantity" },
	{ "order.items", "[{\"sku\":\"A\",\"quantity\":1},[]]", "order.items[1]" },
	{ "order.items[0].sku", NULL, "order.items[0].sku" },
	{ "order.items[0].sku", "\"\"", "order.items[0].sku" },
	{ "order.items[0].sku", "42", "order.items[0].sku" },
	{ "order.items[0].quantity", NULL, "order.items[0].quantity" },
	{ "order.items[0].quantity", "null", "order.items[0].quantity" },
	{ "order.items[0].quantity", "-1", "order.items[0].quantity" },
	{ "order.items[0].quantity", "2.0", "order.items[0].quantity" },
	{ "order.items[0].quantity", "2.5", "order.items[0].quantity" },
	{ "order.items[0].quantity", "\"2\"", "order.items[0].quantity" },
	{ "order.items[0].quantity", "true", "order.items[0].quantity" },
	{ "order.items[0].quantity", "4294967298", "order.items[0].quantity" },
	{ "order.items[0].unit_price", "\"abc\"", "order.items[0].unit_price" },
	{ "order.items[0].title", "5", "order.items[0].title" },
};

static void test_rejections(void)
{
	for (size_t i = 0; i < sizeof reject_rows / sizeof reject_rows[0]; i++) {
		const struct reject_row *r = &reject_rows[i];
		expect_rejected(r->path, r->value, r->field);
	}
}

static void test_invalid_json(void)
{
	static const struct {
		const char *name, *body;
	} rows[] = {
		{ "empty", "" },
		{ "blank", "  \n" },
		{ "unclosed", "{\"type\": \"order.created\"" },
		{ "missing value", "{\"type\":}" },
		{ "trailing comma", "{\"type\":\"order.cancelled\",}" },
		{ "single quotes", "{'type':'order.cancelled'}" },
		{ "trailing garbage", "{\"type\":\"order.cancelled\",\"order\":{\"id\":\"1\"}}x" },
		{ "two documents", "{\"type\":\"order.cancelled\",\"order\":{\"id\":\"1\"}} {}" },
		{ "duplicate key",
		  "{\"type\":\"order.cancelled\",\"order\":{\"id\":\"1\",\"id\":\"2\"}}" },
		{ "escaped NUL", "{\"type\":\"order.cancelled\",\"order\":{\"id\":\"1\\u0000\"}}" },
		{ "invalid UTF-8", "{\"type\":\"order.cancelled\",\"order\":{\"id\":\"\xff\"}}" },
		{ "integer overflow", "{\"order\":{\"id\":99999999999999999999}}" },
		{ "NaN", "NaN" },
		{ "bare word", "order" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		expect_error(rows[i].name, rows[i].body, strlen(rows[i].body), "invalid_json", "");

	/* A raw NUL byte inside the given length ends nothing: it is an error. */
	static const char nul[] = "{\"type\":\"order.cancelled\",\"order\":{\"id\":\"1\"}}\0";
	expect_error("raw NUL", nul, sizeof nul - 1, "invalid_json", "");
	expect_error("NULL body", NULL, 0, "invalid_json", "");

	/* The message carries jansson's reason and where it stopped. */
	struct order o;
	struct order_error err;
	CU_ASSERT_EQUAL(order_parse_native("{\"a\":}", 6, &o, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "line 1"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "byte"));
	/* Quoted input stays printable ASCII in the message. */
	CU_ASSERT_EQUAL(order_parse_native("{\"\xc3\xa9\xff\":1}", 8, &o, &err), -1);
	for (const char *c = err.message; *c; c++)
		CU_ASSERT((unsigned char)*c >= 0x20 && (unsigned char)*c <= 0x7e);
}

static void test_non_object_root(void)
{
	static const char *const bodies[] = { "[]", "[{\"type\":\"order.created\"}]", "42", "\"order\"",
	                                      "null", "true" };
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
		expect_field_error(bodies[i], bodies[i], "");
}

static void test_deep_nesting(void)
{
	size_t depth = 100000;
	char *body = malloc(depth);
	CU_ASSERT_PTR_NOT_NULL_FATAL(body);
	memset(body, '[', depth);
	expect_error("100000 x [", body, depth, "invalid_json", "");
	for (size_t i = 0; i + 5 <= depth; i += 5)
		memcpy(body + i, "{\"a\":", 5);
	expect_error("100000 bytes of {\"a\":", body, depth, "invalid_json", "");
	free(body);

	/* Moderate nesting in a field nobody reads is still just ignored. */
	char value[2001];
	memset(value, '[', 1000);
	memset(value + 1000, ']', 1000);
	value[2000] = '\0';
	expect_accepted("order.extra", value);
}

/* Body whose order.items is n copies of {"sku":"S","quantity":1}. */
static char *body_with_items(size_t n)
{
	json_t *doc = json_loads(BASE, 0, NULL), *items = json_array();
	CU_ASSERT_FATAL(doc && items);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, json_pack("{s:s, s:i}", "sku", "S", "quantity", 1));
	CU_ASSERT_FATAL(set_path(doc, "order.items", items) == 0);
	char *s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	return s;
}

static void test_item_count(void)
{
	static const struct {
		size_t n;
		int ok;
	} rows[] = { { 0, 0 }, { 1, 1 }, { 2, 1 }, { 499, 1 }, { 500, 1 }, { 501, 0 }, { 5000, 0 } };
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char *body = body_with_items(rows[i].n);
		char name[32];
		snprintf(name, sizeof name, "%zu items", rows[i].n);
		if (rows[i].ok) {
			struct order o;
			struct order_error err;
			int rc = order_parse_native(body, strlen(body), &o, &err);
			CHECK(rc == 0, "%s rejected: %s", name, err.message);
			if (rc == 0) {
				CHECK(o.nitems == rows[i].n, "%s: nitems %zu", name, o.nitems);
				CHECK(strcmp(o.items[rows[i].n - 1].sku, "S") == 0, "%s: last sku", name);
				order_free(&o);
			}
		} else {
			expect_field_error(name, body, "order.items");
		}
		free(body);
	}
}

static void test_quantity_bounds(void)
{
	static const struct {
		const char *value;
		int want;  /* 0: rejected */
	} rows[] = { { "0", 0 }, { "1", 1 }, { "2", 2 }, { "9999", 9999 }, { "10000", 10000 },
	             { "10001", 0 }, { "-0", 0 }, { "1.0", 0 }, { "1e2", 0 }, { "[1]", 0 } };
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if (!rows[i].want) {
			expect_rejected("order.items[0].quantity", rows[i].value, "order.items[0].quantity");
			continue;
		}
		struct order o;
		if (parse_with("order.items[0].quantity", rows[i].value, &o) == 0) {
			CHECK(o.items[0].quantity == rows[i].want, "quantity %s: got %d", rows[i].value,
			      o.items[0].quantity);
			order_free(&o);
		}
	}
}

/* A JSON string of n x characters; free() it. */
static char *json_text_of(size_t n)
{
	char *s = malloc(n + 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	s[0] = '"';
	memset(s + 1, 'x', n);
	s[n + 1] = '"';
	s[n + 2] = '\0';
	return s;
}

static void test_length_limits(void)
{
	static const struct {
		const char *path;
		size_t max;
	} rows[] = {
		{ "order.id", ORDER_MAX_ID },
		{ "order.items[0].sku", ORDER_MAX_SKU },
		{ "order.items[0].title", 1024 },
		{ "order.customer.name", 256 },
		{ "order.shipping_address.name", 256 },
		{ "order.shipping_address.line1", 256 },
		{ "order.shipping_address.line2", 256 },
		{ "order.shipping_address.city", 256 },
		{ "order.shipping_address.region", 256 },
		{ "order.shipping_address.postal_code", 256 },
		{ "order.shipping_address.phone", 256 },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char *fit = json_text_of(rows[i].max), *over = json_text_of(rows[i].max + 1);
		expect_accepted(rows[i].path, fit);
		expect_rejected(rows[i].path, over, rows[i].path);
		free(fit);
		free(over);
	}

	/* Lengths are bytes, not characters: 64 x "é" is 128 bytes, 65 are 130. */
	for (int n = 64; n <= 65; n++) {
		char id[2 + 65 * 2 + 1];
		id[0] = '"';
		for (int i = 0; i < n; i++)
			memcpy(id + 1 + 2 * i, "\xc3\xa9", 2);
		memcpy(id + 1 + 2 * n, "\"", 2);
		if (n == 64)
			expect_accepted("order.id", id);
		else
			expect_rejected("order.id", id, "order.id");
	}

	/* Email: 254 bytes fit, 255 do not. */
	for (size_t len = 254; len <= 255; len++) {
		char email[300];
		size_t local = len - strlen("@example.com");
		email[0] = '"';
		memset(email + 1, 'a', local);
		snprintf(email + 1 + local, sizeof email - 1 - local, "@example.com\"");
		if (len == 254)
			expect_accepted("order.customer.email", email);
		else
			expect_rejected("order.customer.email", email, "order.customer.email");
	}
}

static void test_numeric_id(void)
{
	static const struct {
		const char *value, *want;
	} rows[] = {
		{ "1001", "1001" },
		{ "0", "0" },
		{ "-7", "-7" },
		{ "9223372036854775807", "9223372036854775807" },
		{ "\"00123\"", "00123" },  /* strings are kept as sent */
		{ "\" 1001 \"", " 1001 " },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		expect_text("order.id", rows[i].value, rows[i].want, get_id);
	/* The same holds for a cancellation, so both name the same order. */
	static const char cancel[] = "{\"type\":\"order.cancelled\",\"order\":{\"id\":1001}}";
	struct order o;
	struct order_error err;
	CU_ASSERT_EQUAL_FATAL(order_parse_native(cancel, strlen(cancel), &o, &err), 0);
	CU_ASSERT_STRING_EQUAL(o.external_id, "1001");
	order_free(&o);
}

static void test_unit_price(void)
{
	static const struct {
		const char *value, *want;
	} rows[] = {
		{ NULL, NULL },
		{ "null", NULL },
		{ "\"12.50\"", "12.50" },
		{ "\"12.5\"", "12.50" },
		{ "\"12\"", "12.00" },
		{ "\"012.50\"", "12.50" },
		{ "\"0\"", "0.00" },
		{ "\"0.0\"", "0.00" },
		{ "\"000\"", "0.00" },
		{ "\"0.05\"", "0.05" },
		{ "\"1.234\"", "1.234" },
		{ "\"1.2345\"", "1.2345" },
		{ "\"1.23450000\"", "1.2345" },  /* zeros past the 4th digit change nothing */
		{ "\"9999999999999999.9999\"", "9999999999999999.9999" },
		{ "\"0000000000000000001.5\"", "1.50" },
		{ "12.5", "12.50" },
		{ "12.50", "12.50" },
		{ "12", "12.00" },
		{ "0", "0.00" },
		{ "0.1", "0.10" },
		{ "0.0001", "0.0001" },
		{ "19.99", "19.99" },
		{ "-0.0", "0.00" },
		{ "1e2", "100.00" },
		{ "1.5E1", "15.00" },
		{ "9999999999999999", "9999999999999999.00" },
		{ "12345678901.2345", "12345678901.2345" },
		{ "100000000000000.0", "100000000000000.00" },
		{ "\"1e5\"", REJECTED },
		{ "\"abc\"", REJECTED },
		{ "\"-1\"", REJECTED },
		{ "\"+1\"", REJECTED },
		{ "\"\"", REJECTED },
		{ "\" 1\"", REJECTED },
		{ "\"1 \"", REJECTED },
		{ "\"1.\"", REJECTED },
		{ "\".5\"", REJECTED },
		{ "\"1,50\"", REJECTED },
		{ "\"1.2.3\"", REJECTED },
		{ "\"$12.50\"", REJECTED },
		{ "\"1.23456\"", REJECTED },
		{ "\"10000000000000000\"", REJECTED },   /* 17 integer digits */
		{ "\"NaN\"", REJECTED },
		{ "-1", REJECTED },
		{ "-0.5", REJECTED },
		{ "1.23456", REJECTED },
		{ "0.00001", REJECTED },
		{ "10000000000000000", REJECTED },
		{ "1e16", REJECTED },
		{ "1e300", REJECTED },
		{ "1234567890123.4567", REJECTED },  /* 17 digits: a double cannot keep them */
		{ "true", REJECTED },
		{ "{}", REJECTED },
		{ "[\"1.00\"]", REJECTED },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		expect_text("order.items[0].unit_price", rows[i].value, rows[i].want, get_price);
}

static void test_code_case(void)
{
	static const struct {
		const char *path, *value, *want;
		order_getter get;
	} rows[] = {
		{ "order.currency", "\"usd\"", "USD", get_currency },
		{ "order.currency", "\"Eur\"", "EUR", get_currency },
		{ "order.currency", "\"jpY\"", "JPY", get_currency },
		{ "order.currency", "\"CHF\"", "CHF", get_currency },
		{ "order.shipping_address.country", "\"us\"", "US", get_country },
		{ "order.shipping_address.country", "\"gB\"", "GB", get_country },
		{ "order.shipping_address.country", "\"De\"", "DE", get_country },
		{ "order.currency", "\"usdx\"", REJECTED, get_currency },
		{ "order.currency", "\"hrk\"", REJECTED, get_currency },
		{ "order.shipping_address.country", "\"zz\"", REJECTED, get_country },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		expect_text(rows[i].path, rows[i].value, rows[i].want, rows[i].get);
}

static void test_placed_at(void)
{
	static const struct {
		const char *value, *want;
	} rows[] = {
		{ "\"2026-11-22T10:00:00Z\"", "2026-11-22T10:00:00Z" },
		{ "\"2026-11-22T10:00:00.5Z\"", "2026-11-22T10:00:00.5Z" },
		{ "\"2026-11-22T10:00:00.123456789Z\"", "2026-11-22T10:00:00.123456789Z" },
		{ "\"2026-11-22t10:00:00z\"", "2026-11-22t10:00:00z" },
		{ "\"2026-11-22T10:00:00+05:30\"", "2026-11-22T10:00:00+05:30" },
		{ "\"2026-11-22T10:00:00-15:59\"", "2026-11-22T10:00:00-15:59" },
		{ "\"2024-02-29T00:00:00Z\"", "2024-02-29T00:00:00Z" },
		{ "\"2000-02-29T00:00:00Z\"", "2000-02-29T00:00:00Z" },
		{ "\"2026-12-31T23:59:60Z\"", "2026-12-31T23:59:60Z" },  /* leap second */
		{ "\"0001-01-01T00:00:00Z\"", "0001-01-01T00:00:00Z" },
		{ "\"9999-12-31T23:59:59Z\"", "9999-12-31T23:59:59Z" },
		{ "null", NULL },
		{ NULL, NULL },
		{ "\"\"", REJECTED },
		{ "\"2026-11-22\"", REJECTED },
		{ "\"2026-11-22T10:00Z\"", REJECTED },
		{ "\"2026-11-22T10:00:00\"", REJECTED },
		{ "\"2026-11-22 10:00:00Z\"", REJECTED },
		{ "\"2026/11/22T10:00:00Z\"", REJECTED },
		{ "\"26-11-22T10:00:00Z\"", REJECTED },
		{ "\"2026-00-22T10:00:00Z\"", REJECTED },
		{ "\"2026-13-22T10:00:00Z\"", REJECTED },
		{ "\"2026-11-00T10:00:00Z\"", REJECTED },
		{ "\"2026-11-31T10:00:00Z\"", REJECTED },
		{ "\"2026-02-29T10:00:00Z\"", REJECTED },
		{ "\"1900-02-29T10:00:00Z\"", REJECTED },
		{ "\"2026-11-22T24:00:00Z\"", REJECTED },
		{ "\"2026-11-22T10:60:00Z\"", REJECTED },
		{ "\"2026-11-22T10:00:61Z\"", REJECTED },
		{ "\"0000-01-01T00:00:00Z\"", REJECTED },
		{ "\"2026-11-22T10:00:00.Z\"", REJECTED },
		{ "\"2026-11-22T10:00:00.1234567890Z\"", REJECTED },
		{ "\"2026-11-22T10:00:00+16:00\"", REJECTED },
		{ "\"2026-11-22T10:00:00+05:60\"", REJECTED },
		{ "\"2026-11-22T10:00:00+0530\"", REJECTED },
		{ "\"2026-11-22T10:00:00+05\"", REJECTED },
		{ "\"2026-11-22T10:00:00ZZ\"", REJECTED },
		{ "\"2026-11-22T10:00:00Z \"", REJECTED },
		{ "\" 2026-11-22T10:00:00Z\"", REJECTED },
		{ "\"2026-1a-22T10:00:00Z\"", REJECTED },
		{ "\"2026-11-22T10:00:00UTC\"", REJECTED },
		{ "1764000000", REJECTED },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		expect_text("order.placed_at", rows[i].value, rows[i].want, get_placed_at);
}

static void test_optional_fields(void)
{
	/* Absent and null are the same, wherever a field is optional. */
	static const char *const optional[] = {
		"order.placed_at", "order.customer", "order.customer.email", "order.customer.name",
		"order.shipping_address.name", "order.shipping_address.line2",
		"order.shipping_address.region", "order.shipping_address.postal_code",
		"order.shipping_address.phone", "order.items[0].title", "order.items[0].unit_price",
	};
	for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
		expect_accepted(optional[i], NULL);
		expect_accepted(optional[i], "null");
	}
	static const struct {
		const char *path, *value, *want;
		order_getter get;
	} rows[] = {
		{ "order.customer", NULL, NULL, get_email },
		{ "order.customer.email", "null", NULL, get_email },
		{ "order.customer.email", "\"\"", NULL, get_email },  /* guest checkout */
		{ "order.shipping_address.line2", "null", NULL, get_line2 },
		{ "order.shipping_address.line2", "\"\"", "", get_line2 },
		{ "order.items[0].title", NULL, NULL, get_title },
		{ "order.items[0].title", "\"\"", "", get_title },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		expect_text(rows[i].path, rows[i].value, rows[i].want, rows[i].get);
}

static void test_unknown_fields_ignored(void)
{
	static const char *const paths[] = { "extra", "order.extra", "order.customer.extra",
	                                     "order.shipping_address.extra", "order.items[0].extra" };
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
		expect_accepted(paths[i], "{\"nested\":[1,2,{\"x\":null}],\"n\":1.5}");
}

static void test_duplicate_sku_kept(void)
{
	struct order o;
	if (parse_with("order.items",
	               "[{\"sku\":\"MUG-01\",\"quantity\":1},{\"sku\":\"MUG-01\",\"quantity\":3,"
	               "\"unit_price\":9}]", &o) != 0)
		return;
	CU_ASSERT_EQUAL_FATAL(o.nitems, 2);
	CU_ASSERT_STRING_EQUAL(o.items[0].sku, "MUG-01");
	CU_ASSERT_STRING_EQUAL(o.items[1].sku, "MUG-01");
	CU_ASSERT_EQUAL(o.items[0].quantity, 1);
	CU_ASSERT_EQUAL(o.items[1].quantity, 3);
	CU_ASSERT_PTR_NULL(o.items[0].unit_price);
	CU_ASSERT_STRING_EQUAL(o.items[1].unit_price, "9.00");
	order_free(&o);
}

/* Counts the codes of n letters that valid accepts, trying every one. */
static int count_codes(int (*valid)(const char *), int n)
{
	char code[4] = "AAA";
	code[n] = '\0';
	int count = 0, total = n == 2 ? 26 * 26 : 26 * 26 * 26;
	for (int k = 0; k < total; k++) {
		for (int j = n - 1, v = k; j >= 0; j--, v /= 26)
			code[j] = (char)('A' + v % 26);
		count += valid(code) != 0;
	}
	return count;
}

static void test_code_tables(void)
{
	/* Counting every candidate also proves the tables sorted: bsearch over
	 * an unsorted table would miss some. */
	CU_ASSERT_EQUAL(count_codes(order_valid_country, 2), 249);
	CU_ASSERT_EQUAL(count_codes(order_valid_currency, 3), 178);

	static const char *const countries[] = { "US", "GB", "DE", "FR", "JP", "CN", "BR", "AX",
	                                         "BQ", "CW", "SS", "SX", "ZW", "AD" };
	for (size_t i = 0; i < sizeof countries / sizeof countries[0]; i++)
		CHECK(order_valid_country(countries[i]), "country %s", countries[i]);
	static const char *const not_countries[] = { "UK", "EU", "XK", "AN", "YU", "CS", "ZZ", "us",
	                                             "U", "USA", "", "U S" };
	for (size_t i = 0; i < sizeof not_countries / sizeof not_countries[0]; i++)
		CHECK(!order_valid_country(not_countries[i]), "not country '%s'", not_countries[i]);
	CU_ASSERT(!order_valid_country(NULL));

	static const char *const currencies[] = { "USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD",
	                                          "CNY", "INR", "BRL", "MXN", "VES", "VED", "SLE",
	                                          "ZWG", "XCG", "MRU", "STN", "AED", "ZMW" };
	for (size_t i = 0; i < sizeof currencies / sizeof currencies[0]; i++)
		CHECK(order_valid_currency(currencies[i]), "currency %s", currencies[i]);
	static const char *const not_currencies[] = { "HRK", "DEM", "FRF", "ZWL", "VEF", "MRO",
	                                              "STD", "LTL", "usd", "US", "USDT", "",
	                                              "BTC", "RMB" };
	for (size_t i = 0; i < sizeof not_currencies / sizeof not_currencies[0]; i++)
		CHECK(!order_valid_currency(not_currencies[i]), "not currency '%s'", not_currencies[i]);
	CU_ASSERT(!order_valid_currency(NULL));
}

/* ---- Shopify and WooCommerce ---- */

enum platform { SHOPIFY, WOO };

/* A fixture from tests/fixtures as a JSON document (under DROPSHIP_TEST_ROOT,
 * else the working directory, which tests/run.sh sets to the repository). */
static json_t *fixture(const char *name)
{
	const char *root = getenv("DROPSHIP_TEST_ROOT");
	char path[512];
	snprintf(path, sizeof path, "%s/tests/fixtures/%s", root ? root : ".", name);
	json_error_t je;
	json_t *doc = json_load_file(path, 0, &je);
	CHECK(doc != NULL, "%s: %s", path, je.text);
	return doc;
}

/* Parses the platform's fixture, changed at path to the JSON text value
 * (NULL: removed; path NULL: unchanged). Returns the parser's result. */
static int parse_platform(enum platform pf, const char *topic, const char *path, const char *value,
                          struct order *o, struct order_error *err)
{
	json_t *doc = fixture(pf == SHOPIFY ? "shopify-order.json" : "woocommerce-order.json");
	CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
	if (path) {
		json_t *v = value ? json_loads(value, JSON_DECODE_ANY, NULL) : NULL;
		CU_ASSERT_FATAL(!value || v);
		CU_ASSERT_FATAL(set_path(doc, path, v) == 0);
	}
	char *body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(body);
	memset(o, 0xa5, sizeof *o);
	int rc = pf == SHOPIFY ? order_parse_shopify(body, strlen(body), topic, o, err)
	                       : order_parse_woocommerce(body, strlen(body), topic, o, err);
	free(body);
	return rc;
}

/* The platform fixture changed at path must fail at field. */
static void expect_platform_error(enum platform pf, const char *topic, const char *path,
                                  const char *value, const char *field)
{
	struct order o;
	struct order_error err;
	int rc = parse_platform(pf, topic, path, value, &o, &err);
	CHECK(rc == -1, "%s=%s: accepted", str_or_null(path), str_or_null(value));
	if (rc == 0) {
		order_free(&o);
		return;
	}
	CHECK(str_eq(err.code, "invalid_field"), "%s: code %s", str_or_null(path), str_or_null(err.code));
	CHECK(strcmp(err.field, field) == 0, "%s=%s: field '%s', want '%s' (%s)", str_or_null(path),
	      str_or_null(value), err.field, field, err.message);
	CHECK(is_zeroed(&o), "%s: struct not zeroed after an error", str_or_null(path));
}

/* What a platform fixture must map to (ship.line2 is "" in both: absent). */
struct want_head {
	const char *external_id, *name, *placed_at, *email, *customer_name;
	const char *ship_name, *line1, *city, *region, *postal_code, *phone;
};

static void check_head(const struct order *o, const struct want_head *w)
{
	CU_ASSERT_EQUAL(o->event, ORDER_EVENT_CREATED);
	CU_ASSERT_STRING_EQUAL(o->currency, "USD");
	CU_ASSERT(o->has_ship);
	CU_ASSERT_STRING_EQUAL(o->ship.country, "US");
	CU_ASSERT_PTR_NULL(o->ship.line2);
	const char *got[] = { o->external_id, o->name, o->placed_at, o->email, o->customer_name,
	                      o->ship.name, o->ship.line1, o->ship.city, o->ship.region,
	                      o->ship.postal_code, o->ship.phone };
	const char *want[] = { w->external_id, w->name, w->placed_at, w->email, w->customer_name,
	                       w->ship_name, w->line1, w->city, w->region, w->postal_code, w->phone };
	for (size_t i = 0; i < sizeof got / sizeof got[0]; i++)
		CHECK(str_eq(got[i], want[i]), "field %zu: '%s', want '%s'", i, str_or_null(got[i]),
		      str_or_null(want[i]));
}

static void test_shopify_fixture(void)
{
	static const struct want_head want = {
		"450789469", "#1001", "2008-01-10T11:00:00-05:00", "bob.norman@mail.example.com",
		"Bob Norman", "Bob Norman", "Chestnut Street 92", "Louisville", "KY", "40202",
		"+1(502)-459-2181",
	};
	struct order o;
	struct order_error err;
	CU_ASSERT_EQUAL_FATAL(parse_platform(SHOPIFY, "orders/create", NULL, NULL, &o, &err), 0);
	check_head(&o, &want);
	CU_ASSERT_EQUAL_FATAL(o.nitems, 3);
	static const char *const skus[] = { "IPOD2008GREEN", "IPOD2008RED", "IPOD2008BLACK" };
	static const char *const variants[] = { "39072856", "49148385", "457924702" };
	static const char *const line_items[] = { "466157049", "518995019", "703073504" };
	for (size_t i = 0; i < 3; i++) {
		CU_ASSERT_STRING_EQUAL(o.items[i].sku, skus[i]);
		CU_ASSERT_STRING_EQUAL(o.items[i].variant_id, variants[i]);
		CU_ASSERT_STRING_EQUAL(o.items[i].line_item_id, line_items[i]); /* a parcel is matched by it */
		CU_ASSERT_EQUAL(o.items[i].quantity, 1);
		CU_ASSERT_STRING_EQUAL(o.items[i].unit_price, "199.00");
		CU_ASSERT_STRING_EQUAL(o.items[i].title, "IPod Nano - 8gb");
		CU_ASSERT_EQUAL(o.items[i].requires_shipping, 1);
	}
	order_free(&o);
}

static void test_shopify_topics(void)
{
	struct order o;
	struct order_error err;
	CU_ASSERT_EQUAL_FATAL(parse_platform(SHOPIFY, "orders/cancelled", NULL, NULL, &o, &err), 0);
	CU_ASSERT_EQUAL(o.event, ORDER_EVENT_CANCELLED);
	CU_ASSERT_STRING_EQUAL(o.external_id, "450789469");
	order_free(&o);
	/* A cancellation needs the id only. */
	CU_ASSERT_EQUAL(parse_platform(SHOPIFY, "orders/cancelled", "line_items", NULL, &o, &err), 0);
	order_free(&o);
	CU_ASSERT_EQUAL_FATAL(parse_platform(SHOPIFY, "orders/updated", NULL, NULL, &o, &err), 0);
	CU_ASSERT_EQUAL(o.event, ORDER_EVENT_IGNORED);
	CU_ASSERT_STRING_EQUAL(o.ignored, "topic");
	order_free(&o);
	expect_platform_error(SHOPIFY, NULL, NULL, NULL, "X-Shopify-Topic");
	expect_platform_error(SHOPIFY, "", NULL, NULL, "X-Shopify-Topic");
	expect_platform_error(SHOPIFY, "orders/cancelled", "id", NULL, "id");
}

static void test_shopify_lines(void)
{
	struct order o;
	struct order_error err;
	/* No SKU, in each spelling, is a line kept without one. */
	static const char *const no_sku[] = { "null", "\"\"", NULL };
	for (size_t i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL_FATAL(parse_platform(SHOPIFY, "orders/create", "line_items[1].sku", no_sku[i],
		                                     &o, &err), 0);
		CU_ASSERT_EQUAL(o.nitems, 3);
		CU_ASSERT_PTR_NULL(o.items[1].sku);
		CU_ASSERT_STRING_EQUAL(o.items[2].sku, "IPOD2008BLACK");
		order_free(&o);
	}
	CU_ASSERT_EQUAL_FATAL(parse_platform(SHOPIFY, "orders/create", "line_items[0].requires_shipping",
	                                     "false", &o, &err), 0);
	CU_ASSERT_EQUAL(o.items[0].requires_shipping, 0);
	CU_ASSERT_EQUAL(o.items[1].requires_shipping, 1);
	order_free(&o);
	/* Not needed to route or ship: left out rather than refused. */
	CU_ASSERT_EQUAL_FATAL(parse_platform(SHOPIFY, "orders/create", "line_items[0].price", "\"n/a\"",
	                                     &o, &err), 0);
	CU_ASSERT_PTR_NULL(o.items[0].unit_price);
	order_free(&o);
	CU_ASSERT_EQUAL_FATAL(parse_platform(SHOPIFY, "orders/create", "created_at", "\"yesterday\"",
	                                     &o, &err), 0);
	CU_ASSERT_PTR_NULL(o.placed_at);
	order_free(&o);
	expect_platform_error(SHOPIFY, "orders/create", "line_items[2].quantity", "\"1\"",
	                      "line_items[2].quantity");
	expect_platform_error(SHOPIFY, "orders/create", "line_items[0].quantity", "0",
	                      "line_items[0].quantity");
	expect_platform_error(SHOPIFY, "orders/create", "line_items[1].sku", "\"" /* 129 bytes */
	                      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	                      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
	                      "line_items[1].sku");
	expect_platform_error(SHOPIFY, "orders/create", "line_items", "[]", "line_items");
	expect_platform_error(SHOPIFY, "orders/create", "line_items", NULL, "line_items");
	expect_platform_error(SHOPIFY, "orders/create", "currency", "\"XYZ\"", "currency");
}

static void test_shopify_address(void)
{
	struct order o;
	struct order_error err;
	CU_ASSERT_EQUAL_FATAL(parse_platform(SHOPIFY, "orders/create", "shipping_address", "null",
	                                     &o, &err), 0);
	CU_ASSERT_EQUAL(o.has_ship, 0);
	CU_ASSERT_PTR_NULL(o.ship.country);
	order_free(&o);
	CU_ASSERT_EQUAL_FATAL(parse_platform(SHOPIFY, "orders/create", "shipping_address.name", NULL,
	                                     &o, &err), 0);
	CU_ASSERT_STRING_EQUAL(o.ship.name, "Bob Norman"); /* from first_name + last_name */
	order_free(&o);
	CU_ASSERT_EQUAL_FATAL(parse_platform(SHOPIFY, "orders/create", "shipping_address.country_code",
	                                     "\"gb\"", &o, &err), 0);
	CU_ASSERT_STRING_EQUAL(o.ship.country, "GB");
	order_free(&o);
	expect_platform_error(SHOPIFY, "orders/create", "shipping_address.country_code", "\"UK\"",
	                      "shipping_address.country_code");
	expect_platform_error(SHOPIFY, "orders/create", "shipping_address.city", "\"\"",
	                      "shipping_address.city");
	expect_platform_error(SHOPIFY, "orders/create", "shipping_address", "\"Chestnut\"",
	                      "shipping_address");
}

static void test_woo_fixture(void)
{
	static const struct want_head want = {
		"727", "727", "2017-03-22T19:28:02Z", "john.doe@example.com", "John Doe", "John Doe",
		"969 Market", "San Francisco", "CA", "94103", NULL,
	};
	struct order o;
	struct order_error err;
	CU_ASSERT_EQUAL_FATAL(parse_platform(WOO, "order.created", NULL, NULL, &o, &err), 0);
	check_head(&o, &want);
	CU_ASSERT_EQUAL_FATAL(o.nitems, 2);
	CU_ASSERT_PTR_NULL(o.items[0].sku); /* the docs' example product has no SKU */
	CU_ASSERT_EQUAL(o.items[0].quantity, 2);
	CU_ASSERT_STRING_EQUAL(o.items[0].unit_price, "3.00");
	CU_ASSERT_STRING_EQUAL(o.items[0].title, "Woo Single #1");
	CU_ASSERT_STRING_EQUAL(o.items[0].variant_id, "93"); /* no variation: the product */
	CU_ASSERT_STRING_EQUAL(o.items[1].sku, "Bar3");
	CU_ASSERT_STRING_EQUAL(o.items[1].variant_id, "23");
	CU_ASSERT_STRING_EQUAL(o.items[0].line_item_id, "315");
	CU_ASSERT_STRING_EQUAL(o.items[1].line_item_id, "316");
	CU_ASSERT_STRING_EQUAL(o.items[1].unit_price, "12.00");
	CU_ASSERT_EQUAL(o.items[1].requires_shipping, 1);
	order_free(&o);
}

static void test_woo_topics(void)
{
	struct order o;
	struct order_error err;
	static const struct {
		const char *topic, *status;
		enum order_event want;
		const char *ignored;
	} cases[] = {
		{ "order.created", "\"processing\"", ORDER_EVENT_CREATED, NULL },
		{ "order.updated", "\"processing\"", ORDER_EVENT_CREATED, NULL },
		{ "order.updated", "\"completed\"", ORDER_EVENT_CREATED, NULL },
		{ "order.updated", "\"cancelled\"", ORDER_EVENT_CANCELLED, NULL },
		{ "order.created", "\"pending\"", ORDER_EVENT_IGNORED, "not_paid" },
		{ "order.updated", "\"on-hold\"", ORDER_EVENT_IGNORED, "not_paid" },
		{ "order.updated", "\"failed\"", ORDER_EVENT_IGNORED, "not_paid" },
		{ "order.deleted", "\"trash\"", ORDER_EVENT_IGNORED, "topic" },
		{ "product.created", "\"publish\"", ORDER_EVENT_IGNORED, "topic" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc = parse_platform(WOO, cases[i].topic, "status", cases[i].status, &o, &err);
		CHECK(rc == 0, "%s %s: %s", cases[i].topic, cases[i].status, err.message);
		if (rc)
			continue;
		CHECK(o.event == cases[i].want, "%s %s: event %d", cases[i].topic, cases[i].status, o.event);
		CHECK(str_eq(o.ignored, cases[i].ignored), "%s %s: ignored %s", cases[i].topic,
		      cases[i].status, str_or_null(o.ignored));
		if (o.event == ORDER_EVENT_CANCELLED)
			CU_ASSERT_STRING_EQUAL(o.external_id, "727");
		order_free(&o);
	}
	expect_platform_error(WOO, NULL, NULL, NULL, "X-WC-Webhook-Topic");
	expect_platform_error(WOO, "order.created", "status", NULL, "status");
	expect_platform_error(WOO, "order.updated", "id", "[727]", "id");
}

static void test_woo_fields(void)
{
	struct order o;
	struct order_error err;
	/* WooCommerce writes "" in every field of an order without shipping. */
	json_t *empty = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "first_name", "",
	                          "last_name", "", "company", "", "address_1", "", "address_2", "",
	                          "city", "", "state", "", "country", "");
	char *text = json_dumps(empty, JSON_COMPACT);
	json_decref(empty);
	CU_ASSERT_EQUAL_FATAL(parse_platform(WOO, "order.created", "shipping", text, &o, &err), 0);
	free(text);
	CU_ASSERT_EQUAL(o.has_ship, 0);
	order_free(&o);
	/* Line total / quantity: rounded to what numeric(20, 4) keeps. */
	CU_ASSERT_EQUAL_FATAL(parse_platform(WOO, "order.created", "line_items[0].price",
	                                     "6.666666666666667", &o, &err), 0);
	CU_ASSERT_STRING_EQUAL(o.items[0].unit_price, "6.6667");
	order_free(&o);
	CU_ASSERT_EQUAL_FATAL(parse_platform(WOO, "order.created", "date_created_gmt", "null", &o, &err), 0);
	CU_ASSERT_PTR_NULL(o.placed_at);
	order_free(&o);
	expect_platform_error(WOO, "order.created", "shipping.country", "\"United States\"",
	                      "shipping.country");
	expect_platform_error(WOO, "order.created", "shipping.address_1", "\"\"", "shipping.address_1");
	expect_platform_error(WOO, "order.created", "line_items[1].quantity", "1.5",
	                      "line_items[1].quantity");
	expect_platform_error(WOO, "order.created", "currency", NULL, "currency");
}

static void test_platform_bad_bodies(void)
{
	struct order o;
	struct order_error err;
	CU_ASSERT_EQUAL(order_parse_shopify("{\"id\":", 6, "orders/create", &o, &err), -1);
	CU_ASSERT_STRING_EQUAL(err.code, "invalid_json");
	CU_ASSERT_EQUAL(order_parse_woocommerce("[1]", 3, "order.created", &o, &err), -1);
	CU_ASSERT_STRING_EQUAL(err.code, "invalid_field");
	CU_ASSERT_STRING_EQUAL(err.field, "");
	CU_ASSERT(is_zeroed(&o));
	/* The ping is recognised; anything else is not. */
	CU_ASSERT(order_is_woocommerce_ping("webhook_id=12", 13));
	CU_ASSERT(!order_is_woocommerce_ping("webhook_id=", 11));
	CU_ASSERT(!order_is_woocommerce_ping("webhook_id=12&x=1", 17));
	CU_ASSERT(!order_is_woocommerce_ping("{\"webhook_id\":12}", 17));
	CU_ASSERT(!order_is_woocommerce_ping(NULL, 0));
}

static const struct harness_test tests[] = {
	{ "documented example", test_documented_example },
	{ "cancellation", test_cancellation },
	{ "one rejection per rule", test_rejections },
	{ "invalid JSON", test_invalid_json },
	{ "non-object root", test_non_object_root },
	{ "deep nesting", test_deep_nesting },
	{ "item count 1..500", test_item_count },
	{ "quantity bounds", test_quantity_bounds },
	{ "length limits", test_length_limits },
	{ "numeric id", test_numeric_id },
	{ "unit_price", test_unit_price },
	{ "code case normalized", test_code_case },
	{ "placed_at", test_placed_at },
	{ "optional fields", test_optional_fields },
	{ "unknown fields ignored", test_unknown_fields_ignored },
	{ "duplicate sku kept", test_duplicate_sku_kept },
	{ "code tables", test_code_tables },
	{ "shopify: docs example mapped", test_shopify_fixture },
	{ "shopify: topics", test_shopify_topics },
	{ "shopify: lines", test_shopify_lines },
	{ "shopify: shipping address", test_shopify_address },
	{ "woocommerce: docs example mapped", test_woo_fixture },
	{ "woocommerce: topics and statuses", test_woo_topics },
	{ "woocommerce: fields", test_woo_fields },
	{ "platforms: bad bodies and the ping", test_platform_bad_bodies },
	{ NULL, NULL },
};

int main(void)
{
	return harness_main("order", NULL, NULL, tests);
}

/* The platforms' side: orders, answers shaped after the fixtures, faults,
 * and the log of calls (GET /_stub/requests). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "mem/mem.h"
#include "stub.h"

/* The example responses the answers are made from (tests/fixtures/). */
enum stub_fixture {
	STUB_FX_FULFILLMENT_ORDERS,
	STUB_FX_FULFILLMENT_CREATE,
	STUB_FX_USER_ERRORS,
	STUB_FX_THROTTLED,
	STUB_FX_NOTE,
	STUB_FX_MAX
};

static const char *const stub_fixture_files[STUB_FX_MAX] = {
	"shopify-fulfillment-orders.json", "shopify-fulfillment-create.json",
	"shopify-fulfillment-create-user-errors.json", "shopify-throttled.json", "woocommerce-order-note.json",
};

struct stub {
	const struct stub_opts *o;
	json_t *fx[STUB_FX_MAX];
	json_t *shopify;               /* order id → {"lines": [{id, quantity, remaining}], "fulfillments": [...]} */
	json_t *woo;                   /* order id → {"order": the order, "notes": [...]} */
	json_t *log;                   /* every call taken */
	int graphql_calls, creates;
	long long next_id;
	char basic[512];               /* "Basic base64(key:secret)" */
};

struct stub *stub_new(const struct stub_opts *o, char *err, size_t errlen)
{
	struct stub *s = mem_calloc(1, sizeof *s);
	s->o = o;
	for (int i = 0; i < STUB_FX_MAX; i++) {
		char path[1024];
		json_error_t je;
		snprintf(path, sizeof path, "%s/%s", o->fixtures, stub_fixture_files[i]);
		s->fx[i] = json_load_file(path, 0, &je);
		if (!s->fx[i]) {
			snprintf(err, errlen, "--fixtures: %s: %s", path, je.text);
			stub_free(s);
			return NULL;
		}
	}
	s->shopify = json_object();
	s->woo = json_object();
	s->log = json_array();
	s->next_id = 5000000001;
	char cred[400];
	snprintf(cred, sizeof cred, "%s:%s", o->woo_key, o->woo_secret);
	memcpy(s->basic, "Basic ", 6);
	EVP_EncodeBlock((unsigned char *)s->basic + 6, (const unsigned char *)cred, (int)strlen(cred));
	return s;
}

void stub_free(struct stub *s)
{
	if (!s)
		return;
	for (int i = 0; i < STUB_FX_MAX; i++)
		json_decref(s->fx[i]);
	json_decref(s->shopify);
	json_decref(s->woo);
	json_decref(s->log);
	free(s);
}

/* An id as text: integers and strings both. */
static const char *stub_id(json_t *v, char *buf, size_t cap)
{
	if (json_is_integer(v))
		snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else
		snprintf(buf, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
	return buf;
}

int stub_add_order(struct stub *s, const char *body, char *err, size_t errlen)
{
	json_t *order = json_loads(body, 0, NULL);
	char id[32], lid[32];
	if (!json_is_object(order) || !*stub_id(json_object_get(order, "id"), id, sizeof id) ||
	    !json_is_array(json_object_get(order, "line_items"))) {
		snprintf(err, errlen, "an order needs an id and line_items");
		json_decref(order);
		return -1;
	}
	/* WooCommerce renders the order's status; Shopify's webhook has financial_status instead. */
	if (json_object_get(order, "status") && json_object_get(order, "number")) {
		json_object_set_new(s->woo, id, json_pack("{s:o, s:[]}", "order", order, "notes"));
		return 0;
	}
	json_t *lines = json_array(), *li;
	size_t i;
	json_array_foreach(json_object_get(order, "line_items"), i, li) {
		json_int_t q = json_integer_value(json_object_get(li, "quantity"));
		if (json_is_false(json_object_get(li, "requires_shipping")))
			continue;
		json_int_t loc = (json_int_t)(json_array_size(lines) % (size_t)s->o->locations) + 1;
		const char *item_id = stub_id(json_object_get(li, "id"), lid, sizeof lid);
		json_array_append_new(lines, json_pack("{s:s, s:I, s:I, s:I}", "id", item_id, "quantity", q,
		                                       "remaining", q, "loc", loc));
	}
	json_object_set_new(s->shopify, id, json_pack("{s:o, s:[]}", "lines", lines, "fulfillments"));
	json_decref(order);
	return 0;
}

/* ---- Shopify ---- */

static json_t *stub_error(const char *code, const char *message, int status)
{
	return json_pack("{s:s, s:s, s:{s:i}}", "code", code, "message", message, "data", "status", status);
}

/* The stub's ids: a fulfillment order is its order's id and its
 * location's digit, a fulfillment order line item its line item's id and
 * the same digit. */
static void stub_gid(char *buf, size_t cap, const char *type, const char *id, json_int_t loc)
{
	snprintf(buf, cap, "gid://shopify/%s/%s%" JSON_INTEGER_FORMAT, type, id, loc);
}

static json_t *stub_location(json_int_t loc)
{
	char gid[64];
	snprintf(gid, sizeof gid, "gid://shopify/Location/%" JSON_INTEGER_FORMAT, loc);
	return json_pack("{s:s}", "id", gid);
}

/* The look: the fixture's shape, the order's state; one fulfillment order
 * per location that has lines. */
static json_t *stub_fulfillment_orders(struct stub *s, const char *order_id, json_t *o)
{
	json_t *doc = json_deep_copy(s->fx[STUB_FX_FULFILLMENT_ORDERS]);
	json_t *order = json_object_get(json_object_get(doc, "data"), "order");
	json_t *fos = json_object_get(json_object_get(order, "fulfillmentOrders"), "nodes");
	json_t *node_shape = json_deep_copy(json_array_get(fos, 0));
	json_t *shape = json_deep_copy(json_array_get(json_object_get(json_object_get(node_shape, "lineItems"),
	                                                              "nodes"), 0));
	char gid[96];
	snprintf(gid, sizeof gid, "gid://shopify/Order/%s", order_id);
	json_object_set_new(order, "id", json_string(gid));
	json_object_set(order, "fulfillments", json_object_get(o, "fulfillments"));
	json_array_clear(fos);
	for (json_int_t loc = 1; loc <= s->o->locations; loc++) {
		json_t *node = json_deep_copy(node_shape);
		json_t *items = json_object_get(json_object_get(node, "lineItems"), "nodes");
		json_array_clear(items);
		int open = 0;
		json_t *l;
		size_t i;
		json_array_foreach(json_object_get(o, "lines"), i, l) {
			if (json_integer_value(json_object_get(l, "loc")) != loc)
				continue;
			json_t *n = json_deep_copy(shape);
			const char *lid = json_string_value(json_object_get(l, "id"));
			stub_gid(gid, sizeof gid, "FulfillmentOrderLineItem", lid, loc);
			json_object_set_new(n, "id", json_string(gid));
			json_object_set(n, "remainingQuantity", json_object_get(l, "remaining"));
			json_object_set(n, "totalQuantity", json_object_get(l, "quantity"));
			snprintf(gid, sizeof gid, "gid://shopify/LineItem/%s", lid);
			json_object_set_new(json_object_get(n, "lineItem"), "id", json_string(gid));
			open |= json_integer_value(json_object_get(l, "remaining")) > 0;
			json_array_append_new(items, n);
		}
		if (json_array_size(items) == 0) {
			json_decref(node);
			continue;
		}
		stub_gid(gid, sizeof gid, "FulfillmentOrder", order_id, loc);
		json_object_set_new(node, "id", json_string(gid));
		json_object_set_new(node, "status", json_string(open ? "OPEN" : "CLOSED"));
		json_object_set_new(node, "assignedLocation", json_pack("{s:o}", "location", stub_location(loc)));
		json_array_append_new(fos, node);
	}
	json_decref(shape);
	json_decref(node_shape);
	return doc;
}

/* The line of o whose fulfillment order line item is gid, or NULL. */
static json_t *stub_line_of(json_t *o, const char *gid)
{
	json_t *l;
	size_t i;
	json_array_foreach(json_object_get(o, "lines"), i, l) {
		char want[96];
		stub_gid(want, sizeof want, "FulfillmentOrderLineItem", json_string_value(json_object_get(l, "id")),
		         json_integer_value(json_object_get(l, "loc")));
		if (strcmp(want, gid) == 0)
			return l;
	}
	return NULL;
}

/* fulfillmentCreate: checked like Shopify checks it (one location's
 * fulfillment orders, each item on its fulfillment order, quantities within
 * what remains), then applied. */
static json_t *stub_fulfillment_create(struct stub *s, json_t *input)
{
	json_t *by = json_object_get(input, "lineItemsByFulfillmentOrder");
	json_t *g = json_array_get(by, 0);
	const char *fo = json_string_value(json_object_get(g, "fulfillmentOrderId"));
	const char *prefix = "gid://shopify/FulfillmentOrder/";
	char order_id[32] = "";
	size_t np = strlen(prefix);
	json_int_t loc = 0;
	if (fo && strncmp(fo, prefix, np) == 0 && strlen(fo) > np + 1) {
		snprintf(order_id, sizeof order_id, "%.*s", (int)(strlen(fo) - np - 1), fo + np);
		loc = fo[strlen(fo) - 1] - '0';
	}
	json_t *o = json_object_get(s->shopify, order_id);
	json_t *items = json_object_get(g, "fulfillmentOrderLineItems");
	json_t *it;
	size_t i;
	int ok = o && json_array_size(by) == 1 && json_array_size(items) > 0;
	json_array_foreach(items, i, it) {
		json_t *l = o ? stub_line_of(o, json_string_value(json_object_get(it, "id"))) : NULL;
		json_int_t q = json_integer_value(json_object_get(it, "quantity"));
		ok &= l && q > 0 && q <= json_integer_value(json_object_get(l, "remaining"));
	}
	if (s->o->user_errors || !ok)
		return json_deep_copy(s->fx[STUB_FX_USER_ERRORS]);
	json_array_foreach(items, i, it) {
		json_t *l = stub_line_of(o, json_string_value(json_object_get(it, "id")));
		json_object_set_new(l, "remaining", json_integer(json_integer_value(json_object_get(l, "remaining")) -
		                                                 json_integer_value(json_object_get(it, "quantity"))));
	}
	json_t *doc = json_deep_copy(s->fx[STUB_FX_FULFILLMENT_CREATE]);
	json_t *payload = json_object_get(json_object_get(doc, "data"), "fulfillmentCreate");
	json_t *f = json_object_get(payload, "fulfillment");
	char gid[96];
	snprintf(gid, sizeof gid, "gid://shopify/Fulfillment/%lld", s->next_id++);
	json_object_set_new(f, "id", json_string(gid));
	json_object_set_new(f, "location", stub_location(loc));
	json_t *tracking = json_object_get(input, "trackingInfo");
	json_t *t = json_array_get(json_object_get(f, "trackingInfo"), 0);
	json_object_set(t, "company", json_object_get(tracking, "company"));
	json_object_set(t, "number", json_object_get(tracking, "number"));
	json_object_set(t, "url", json_object_get(tracking, "url") ? json_object_get(tracking, "url") : json_null());
	json_array_append(json_object_get(o, "fulfillments"), f);
	return doc;
}

static void stub_graphql(struct stub *s, const struct stub_request *req, struct stub_answer *a)
{
	if (!req->token || strcmp(req->token, s->o->shopify_token) != 0) {
		a->status = 401;
		a->body = json_pack("{s:s}", "errors",
		                    "[API] Invalid API key or access token (unrecognized login or wrong password)");
		return;
	}
	json_t *doc = json_loads(req->body, 0, NULL);
	const char *query = json_string_value(json_object_get(doc, "query"));
	json_t *vars = json_object_get(doc, "variables");
	a->status = 200;
	if (!query) {
		a->status = 400;
		a->body = json_pack("{s:s}", "errors", "Parameter Missing or Invalid");
	} else if (s->graphql_calls++ < s->o->throttle) {
		a->body = json_deep_copy(s->fx[STUB_FX_THROTTLED]);
	} else if (strstr(query, "fulfillmentCreate")) {
		a->body = stub_fulfillment_create(s, json_object_get(vars, "fulfillment"));
		a->lose = s->creates++ < s->o->lose_creates;
	} else if (strstr(query, "fulfillmentOrders")) {
		const char *gid = json_string_value(json_object_get(vars, "id"));
		const char *prefix = "gid://shopify/Order/";
		const char *id = gid && strncmp(gid, prefix, strlen(prefix)) == 0 ? gid + strlen(prefix) : "";
		json_t *o = json_object_get(s->shopify, id);
		a->body = o ? stub_fulfillment_orders(s, id, o)
		            : json_pack("{s:{s:n}, s:O}", "data", "order", "extensions",
		                        json_object_get(s->fx[STUB_FX_FULFILLMENT_ORDERS], "extensions"));
	} else {
		a->body = json_pack("{s:[{s:s}]}", "errors", "message", "this stub answers fulfillmentOrders and "
		                    "fulfillmentCreate only");
	}
	json_decref(doc);
}

/* ---- WooCommerce ---- */

static void stub_woo(struct stub *s, const struct stub_request *req, const char *rest, struct stub_answer *a)
{
	if (!req->authorization || strcmp(req->authorization, s->basic) != 0) {
		a->status = 401;
		a->body = stub_error("woocommerce_rest_cannot_view", "Sorry, you cannot list resources.", 401);
		return;
	}
	char id[32];
	size_t n = strspn(rest, "0123456789");
	snprintf(id, sizeof id, "%.*s", (int)(n < sizeof id ? n : sizeof id - 1), rest);
	const char *tail = rest + n;
	json_t *o = json_object_get(s->woo, id);
	if (!o) {
		a->status = 404;
		a->body = stub_error("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404);
		return;
	}
	json_t *order = json_object_get(o, "order"), *notes = json_object_get(o, "notes");
	json_t *doc = req->body[0] ? json_loads(req->body, 0, NULL) : NULL;
	a->status = 200;
	if (strcmp(req->method, "GET") == 0 && strncmp(tail, "/notes", 6) == 0) {
		a->body = json_deep_copy(notes);
	} else if (strcmp(req->method, "POST") == 0 && strcmp(tail, "/notes") == 0 &&
	           json_is_string(json_object_get(doc, "note"))) {
		json_t *note = json_deep_copy(s->fx[STUB_FX_NOTE]);
		json_object_set_new(note, "id", json_integer(s->next_id++));
		json_object_set(note, "note", json_object_get(doc, "note"));
		json_t *customer = json_object_get(doc, "customer_note");
		json_object_set_new(note, "customer_note", json_boolean(json_is_true(customer)));
		json_array_insert(notes, 0, note); /* newest first, as WooCommerce lists them */
		a->status = 201;
		a->body = note;
	} else if (strcmp(req->method, "GET") == 0 && !*tail) {
		a->body = json_deep_copy(order);
	} else if (strcmp(req->method, "PUT") == 0 && !*tail && json_is_object(doc)) {
		json_object_update_existing(order, doc);
		a->body = json_deep_copy(order);
	} else {
		a->status = 404;
		a->body = stub_error("rest_no_route", "No route was found matching the URL and request method.", 404);
	}
	json_decref(doc);
}

/* ---- every call ---- */

void stub_handle(struct stub *s, const struct stub_request *req, struct stub_answer *a)
{
	memset(a, 0, sizeof *a);
	const char *p = req->path;
	if (strcmp(p, "/_stub/requests") == 0 && strcmp(req->method, "GET") == 0) {
		a->status = 200;
		a->body = json_incref(s->log);
		return;
	}
	json_t *entry = json_pack("{s:s, s:s, s:s?, s:s?, s:s}", "method", req->method, "path", p, "token", req->token,
	                          "authorization", req->authorization, "body", req->body);
	json_array_append_new(s->log, entry);
	char err[256];
	const char *woo = "/wp-json/wc/v3/orders/";
	if (strcmp(p, "/_stub/orders") == 0 && strcmp(req->method, "POST") == 0) {
		int rc = stub_add_order(s, req->body, err, sizeof err);
		a->status = rc == 0 ? 201 : 422;
		a->body = rc == 0 ? json_pack("{s:b}", "ok", 1) : json_pack("{s:s}", "error", err);
	} else if (strncmp(p, "/admin/api/", 11) == 0 && strstr(p, "/graphql.json") &&
	           strcmp(req->method, "POST") == 0) {
		stub_graphql(s, req, a);
	} else if (strncmp(p, woo, strlen(woo)) == 0) {
		stub_woo(s, req, p + strlen(woo), a);
	} else {
		a->status = 404;
		a->body = json_pack("{s:s}", "errors", "Not Found");
	}
	/* what it answered, or that it did not */
	json_object_set_new(entry, "status", a->lose ? json_null() : json_integer(a->status));
}

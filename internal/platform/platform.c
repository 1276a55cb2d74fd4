#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "mem/mem.h"
#include "platform/platform.h"

#define PLATFORM_STEP_NAME(id, name) name,
static const char *const platform_step_names[] = { PLATFORM_STEPS(PLATFORM_STEP_NAME) };
#undef PLATFORM_STEP_NAME

const char *platform_step_name(enum platform_step s)
{
	return (unsigned)s < PLATFORM_STEP_MAX ? platform_step_names[s] : "?";
}

/* ---- carriers ---- */

/* A company the platforms know, the spellings suppliers use for it (letters
 * and digits only, lower case), and where a number is tracked (the URL
 * the number is appended to), or NULL. Shopify's names, exactly as its list writes them. */
static const struct {
	const char *name;
	const char *aliases[5];
	const char *track;
} platform_carriers[] = {
	{ "UPS", { "ups", "unitedparcelservice", "upsground" }, "https://www.ups.com/track?tracknum=" },
	{ "USPS", { "usps", "unitedstatespostalservice", "uspostalservice", "uspostal" },
	  "https://tools.usps.com/go/TrackConfirmAction?tLabels=" },
	{ "FedEx", { "fedex", "federalexpress", "fedexground" }, "https://www.fedex.com/fedextrack/?trknbr=" },
	{ "DHL Express", { "dhl", "dhlexpress", "dhlworldwide" },
	  "https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&tracking-id=" },
	{ "DHL eCommerce", { "dhlecommerce", "dhlglobalmail", "dhlparcel" }, NULL },
	{ "Canada Post", { "canadapost", "postescanada" },
	  "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor=" },
	{ "Royal Mail", { "royalmail" }, "https://www.royalmail.com/track-your-item#/tracking-results/" },
	{ "Australia Post", { "australiapost", "auspost" }, NULL },
	{ "Deutsche Post", { "deutschepost" }, NULL },
	{ "DPD", { "dpd" }, NULL },
	{ "GLS", { "gls" }, NULL },
	{ "PostNL", { "postnl" }, NULL },
	{ "La Poste", { "laposte" }, NULL },
	{ "Colissimo", { "colissimo" }, NULL },
	{ "Chronopost", { "chronopost" }, NULL },
	{ "Correos", { "correos" }, NULL },
	{ "Swiss Post", { "swisspost", "postch" }, NULL },
	{ "Evri", { "evri", "hermesuk" }, NULL },
	{ "OnTrac", { "ontrac" }, NULL },
	{ "Lasership", { "lasership" }, NULL },
	{ "Purolator", { "purolator" }, NULL },
	{ "TNT", { "tnt" }, NULL },
	{ "China Post", { "chinapost" }, NULL },
	{ "YunExpress", { "yunexpress" }, NULL },
	{ "New Zealand Post", { "newzealandpost", "nzpost" }, NULL },
};
#define PLATFORM_NCARRIERS (sizeof platform_carriers / sizeof platform_carriers[0])

/* carrier's letters and digits, lower case, into key. */
static void platform_carrier_key(const char *carrier, char *key, size_t cap)
{
	size_t n = 0;
	for (const char *p = carrier; *p && n + 1 < cap; p++)
		if (isalnum((unsigned char)*p))
			key[n++] = (char)tolower((unsigned char)*p);
	key[n] = '\0';
}

/* The index of carrier in platform_carriers, or -1. */
static int platform_carrier_find(const char *carrier)
{
	char key[64];
	if (!carrier || strlen(carrier) >= sizeof key)
		return -1;
	platform_carrier_key(carrier, key, sizeof key);
	for (size_t i = 0; i < PLATFORM_NCARRIERS; i++)
		for (size_t a = 0; a < 5 && platform_carriers[i].aliases[a]; a++)
			if (strcmp(key, platform_carriers[i].aliases[a]) == 0)
				return (int)i;
	return -1;
}

const char *platform_carrier(const char *carrier)
{
	int i = platform_carrier_find(carrier);
	return i < 0 ? carrier : platform_carriers[i].name;
}

int platform_tracking_url(const char *carrier, const char *number, char *buf, size_t cap)
{
	int i = platform_carrier_find(carrier);
	if (i < 0 || !platform_carriers[i].track || !number || !*number || strlen(number) > 64)
		return 0;
	for (const char *p = number; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-')
			return 0;
	int n = snprintf(buf, cap, "%s%s", platform_carriers[i].track, number);
	return n > 0 && (size_t)n < cap;
}

/* ---- messages ---- */

static void platform_err(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s", what);
}

/* A non-empty string member, or NULL. */
static const char *platform_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s && *s ? s : NULL;
}

/* True when s is an id of digits alone (it goes into a URL or a GID). */
static int platform_numeric_id(const char *s)
{
	if (!s || !*s || strlen(s) > 20)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

static int platform_msg_lines(struct platform_msg *m, json_t *lines, char *err, size_t errlen)
{
	m->nlines = json_array_size(lines);
	if (m->nlines == 0) {
		platform_err(err, errlen, "lines: a parcel needs at least one line");
		return -1;
	}
	m->lines = mem_calloc(m->nlines, sizeof *m->lines);
	for (size_t i = 0; i < m->nlines; i++) {
		json_t *l = json_array_get(lines, i);
		struct platform_line *pl = &m->lines[i];
		pl->line = (int)json_integer_value(json_object_get(l, "line"));
		pl->quantity = (int)json_integer_value(json_object_get(l, "quantity"));
		pl->line_item_id = platform_str(l, "line_item_id");
		pl->sku = platform_str(l, "sku");
		pl->title = platform_str(l, "title");
		if (pl->line <= 0 || pl->quantity <= 0) {
			snprintf(err, errlen, "lines[%zu]: line and quantity must be positive", i);
			return -1;
		}
	}
	return 0;
}

int platform_msg_parse(const char *kind, const char *payload, struct platform_msg *m, char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	m->root = json_loads(payload, 0, NULL);
	const char *platform = platform_str(m->root, "platform");
	m->order_id = platform_str(m->root, "external_order_id");
	m->completed = strcmp(kind, "platform.completed") == 0;
	if (!json_is_object(m->root) || !platform) {
		platform_err(err, errlen, "the message has no platform");
		goto fail;
	}
	if (strcmp(platform, "shopify") == 0) {
		m->platform = PLATFORM_SHOPIFY;
	} else if (strcmp(platform, "woocommerce") == 0) {
		m->platform = PLATFORM_WOOCOMMERCE;
	} else {
		snprintf(err, errlen, "unknown platform '%.40s'", platform);
		goto fail;
	}
	if (!platform_numeric_id(m->order_id)) {
		platform_err(err, errlen, "the order's id in the store is not a platform order id (digits)");
		goto fail;
	}
	if (m->completed) {
		if (m->platform != PLATFORM_WOOCOMMERCE) {
			platform_err(err, errlen, "platform.completed is for WooCommerce stores only");
			goto fail;
		}
		return 0;
	}
	if (strcmp(kind, "platform.fulfillment") != 0) {
		snprintf(err, errlen, "unknown message kind '%.40s'", kind);
		goto fail;
	}
	json_t *tracking = json_object_get(m->root, "tracking");
	m->carrier = platform_carrier(platform_str(tracking, "carrier"));
	m->number = platform_str(tracking, "number");
	m->url = platform_str(tracking, "url");
	if (!m->carrier || !m->number) {
		platform_err(err, errlen, "tracking: carrier and number are required");
		goto fail;
	}
	if (!m->url && platform_tracking_url(m->carrier, m->number, m->url_buf, sizeof m->url_buf))
		m->url = m->url_buf;
	json_t *notify = json_object_get(m->root, "notify_customer");
	m->notify_customer = json_is_boolean(notify) ? json_is_true(notify) : 1;
	if (platform_msg_lines(m, json_object_get(m->root, "lines"), err, errlen) < 0)
		goto fail;
	return 0;
fail:
	platform_msg_free(m);
	return -1;
}

void platform_msg_free(struct platform_msg *m)
{
	free(m->lines);
	json_decref(m->root);
	memset(m, 0, sizeof *m);
}

char *platform_note_text(const struct platform_msg *m)
{
	size_t cap = 512 + m->nlines * 160, n = 0;
	char *t = mem_alloc(cap);
	n += (size_t)snprintf(t + n, cap - n, "Shipped with %s, tracking number %s.", m->carrier, m->number);
	if (m->url)
		n += (size_t)snprintf(t + n, cap - n, " Track it at %.300s", m->url);
	n += (size_t)snprintf(t + n, cap - n, "\nIn this parcel:");
	for (size_t i = 0; i < m->nlines && n < cap; i++) {
		const struct platform_line *l = &m->lines[i];
		n += (size_t)snprintf(t + n, cap - n, "%s %d x %.120s", i ? "," : "", l->quantity,
		                      l->title ? l->title : l->sku ? l->sku : "item");
	}
	return t;
}

/* ---- requests ---- */

static const char platform_look_query[] =
	"query DropshipFulfillmentOrders($id: ID!) { order(id: $id) { id"
	" fulfillments(first: 50) { id status location { id } trackingInfo(first: 5) { company number url } }"
	" fulfillmentOrders(first: 20) { nodes { id status assignedLocation { location { id } }"
	" lineItems(first: 100) { nodes { id remainingQuantity totalQuantity lineItem { id } } } } } } }";

static const char platform_create_mutation[] =
	"mutation DropshipFulfillmentCreate($fulfillment: FulfillmentInput!) {"
	" fulfillmentCreate(fulfillment: $fulfillment) {"
	" fulfillment { id status trackingInfo(first: 5) { company number url } }"
	" userErrors { field message } } }";

void platform_request_free(struct platform_request *r)
{
	free(r->url);
	free(r->body);
	if (r->auth)
		OPENSSL_cleanse(r->auth, strlen(r->auth));
	free(r->auth);
	memset(r, 0, sizeof *r);
}

/* "Basic " and the base64 of credential. */
static char *platform_basic(const char *credential)
{
	size_t n = strlen(credential);
	char *out = mem_alloc(6 + 4 * ((n + 2) / 3) + 1);
	memcpy(out, "Basic ", 6);
	EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)credential, (int)n);
	return out;
}

/* The store's URL, then the parts of a path. */
static char *platform_url_of(const struct platform_exchange *x, const char *a, const char *b, const char *c)
{
	size_t cap = strlen(x->base_url) + strlen(a) + strlen(b) + strlen(c) + 1;
	char *url = mem_alloc(cap);
	snprintf(url, cap, "%s%s%s%s", x->base_url, a, b, c);
	return url;
}

static char *platform_graphql(const char *query, json_t *variables)
{
	json_t *doc = json_pack("{s:s, s:o}", "query", query, "variables", variables);
	char *text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return text;
}

void platform_exchange_request(const struct platform_exchange *x, struct platform_request *r)
{
	memset(r, 0, sizeof *r);
	const struct platform_msg *m = &x->msg;
	size_t h = 0;
	if (m->platform == PLATFORM_SHOPIFY) {
		char gid[64];
		snprintf(gid, sizeof gid, "gid://shopify/Order/%s", m->order_id);
		r->method = "POST";
		r->url = platform_url_of(x, "/admin/api/", x->api_version, "/graphql.json");
		r->body = x->step == PLATFORM_STEP_FULFILLMENT_ORDERS
		          ? platform_graphql(platform_look_query, json_pack("{s:s}", "id", gid))
		          : platform_graphql(platform_create_mutation, json_pack("{s:O}", "fulfillment", x->create));
		r->auth = mem_strdup(x->credential);
		r->headers[h++] = "X-Shopify-Access-Token";
	} else {
		switch (x->step) {
		case PLATFORM_STEP_NOTES:
			r->method = "GET";
			r->url = platform_url_of(x, "/wp-json/wc/v3/orders/", m->order_id, "/notes?type=customer");
			break;
		case PLATFORM_STEP_NOTE_CREATE: {
			char *text = platform_note_text(m);
			json_t *doc = json_pack("{s:s, s:b}", "note", text, "customer_note", 1);
			free(text);
			r->method = "POST";
			r->url = platform_url_of(x, "/wp-json/wc/v3/orders/", m->order_id, "/notes");
			r->body = json_dumps(doc, JSON_COMPACT);
			json_decref(doc);
			break;
		}
		case PLATFORM_STEP_ORDER:
			r->method = "GET";
			r->url = platform_url_of(x, "/wp-json/wc/v3/orders/", m->order_id, "");
			break;
		default:
			r->method = "PUT";
			r->url = platform_url_of(x, "/wp-json/wc/v3/orders/", m->order_id, "");
			r->body = mem_strdup("{\"status\":\"completed\"}");
			break;
		}
		r->auth = platform_basic(x->credential);
		r->headers[h++] = "Authorization";
	}
	r->headers[h++] = r->auth;
	r->headers[h++] = "Accept";
	r->headers[h++] = "application/json";
	r->headers[h] = NULL;
	const char *p = strstr(r->url, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	r->path = p ? p : "/";
}

/* ---- answers ---- */

static void platform_answer(struct platform_answer *a, enum platform_verdict v, const char *why)
{
	a->verdict = v;
	snprintf(a->why, sizeof a->why, "%s", why);
}

/* Shopify's own wait for a throttled query: the points it lacks over the
 * rate they come back at (extensions.cost), at least a second, at most a
 * minute; 1 s when the answer does not say. */
static long long platform_throttle_ms(json_t *doc)
{
	json_t *cost = json_object_get(json_object_get(doc, "extensions"), "cost");
	json_t *st = json_object_get(cost, "throttleStatus");
	double need = json_number_value(json_object_get(cost, "requestedQueryCost"));
	double have = json_number_value(json_object_get(st, "currentlyAvailable"));
	double rate = json_number_value(json_object_get(st, "restoreRate"));
	if (rate <= 0 || need <= have)
		return 1000;
	double ms = ceil((need - have) / rate * 1000.0);
	return ms < 1000 ? 1000 : ms > 60000 ? 60000 : (long long)ms;
}

/* The top-level GraphQL errors of doc: 1 when there are some (a set
 * verdict in a), else 0. THROTTLED and INTERNAL_SERVER_ERROR are tried
 * again; anything else (access denied, a bad query) is for someone to fix. */
static int platform_graphql_errors(json_t *doc, struct platform_answer *a)
{
	json_t *errors = json_object_get(doc, "errors");
	if (!json_array_size(errors))
		return 0;
	json_t *e = json_array_get(errors, 0);
	const char *code = json_string_value(json_object_get(json_object_get(e, "extensions"), "code"));
	const char *message = json_string_value(json_object_get(e, "message"));
	if ((code && strcmp(code, "THROTTLED") == 0) || (message && strcmp(message, "Throttled") == 0)) {
		platform_answer(a, PLATFORM_RETRY, "throttled by Shopify");
		a->min_delay_ms = platform_throttle_ms(doc);
		return 1;
	}
	int retry = code && strcmp(code, "INTERNAL_SERVER_ERROR") == 0;
	snprintf(a->why, sizeof a->why, "GraphQL error%s%.40s: %.300s", code ? " " : "", code ? code : "",
	         message ? message : "(no message)");
	a->verdict = retry ? PLATFORM_RETRY : PLATFORM_FAILED;
	return 1;
}

/* The location id of a fulfillment or of a fulfillment order's
 * assignment ("" when the answer has none). */
static const char *platform_location_of(json_t *o)
{
	json_t *loc = json_object_get(o, "location");
	if (!loc)
		loc = json_object_get(json_object_get(o, "assignedLocation"), "location");
	const char *id = json_string_value(json_object_get(loc, "id"));
	return id ? id : "";
}

/* A fulfillment of the order at location loc that already carries the
 * parcel's tracking number (a lost answer to our own create, or an earlier
 * location of this parcel): its id, or NULL. loc NULL: at any location. A
 * fulfillment whose location the answer does not give counts for every
 * location. */
static const char *platform_fulfilled_at(json_t *order, const char *number, const char *loc)
{
	json_t *f;
	size_t i;
	json_array_foreach(json_object_get(order, "fulfillments"), i, f) {
		const char *status = json_string_value(json_object_get(f, "status"));
		const char *at = platform_location_of(f);
		if ((status && strcmp(status, "CANCELLED") == 0) || (loc && *at && strcmp(at, loc) != 0))
			continue;
		json_t *t;
		size_t k;
		json_array_foreach(json_object_get(f, "trackingInfo"), k, t) {
			const char *n = json_string_value(json_object_get(t, "number"));
			if (n && strcmp(n, number) == 0)
				return json_string_value(json_object_get(f, "id"));
		}
	}
	return NULL;
}

static int platform_fo_open(json_t *fo)
{
	const char *status = json_string_value(json_object_get(fo, "status"));
	return status && (strcmp(status, "OPEN") == 0 || strcmp(status, "IN_PROGRESS") == 0);
}

/* The entry of fulfillmentOrderId fo_id in by (an array of
 * FulfillmentOrderLineItemsInput), added when missing. */
static json_t *platform_fo_group(json_t *by, const char *fo_id)
{
	json_t *g;
	size_t i;
	json_array_foreach(by, i, g) {
		if (strcmp(json_string_value(json_object_get(g, "fulfillmentOrderId")), fo_id) == 0)
			return json_object_get(g, "fulfillmentOrderLineItems");
	}
	json_t *items = json_array();
	json_array_append_new(by, json_pack("{s:s, s:o}", "fulfillmentOrderId", fo_id,
	                                    "fulfillmentOrderLineItems", items));
	return items;
}

/* One look's decision. Shopify fulfils the fulfillment orders of one
 * location per fulfillmentCreate, so a parcel whose lines sit at several
 * locations is fulfilled one location at a time. */
struct platform_look {
	json_t *order;
	const char *number;        /* the parcel's tracking number */
	json_t *by;                /* lineItemsByFulfillmentOrder of this create */
	const char *loc;           /* its location; NULL until an item is taken */
	int more;                  /* open items of the parcel left at other locations */
	const char *before;        /* a fulfillment of this parcel found at some location */
};

/* Takes line l's quantity from the open fulfillment order line items of
 * the order's line item at k->loc into k->by. Returns what could be taken
 * (0: the line is fulfilled already, or waits for another location), or
 * -1 when the line item is on no fulfillment order, or none is open. */
static int platform_take_line(struct platform_look *k, const struct platform_line *l)
{
	char gid[96];
	snprintf(gid, sizeof gid, "gid://shopify/LineItem/%s", l->line_item_id);
	int found = 0, wanted = l->quantity, taken = 0;
	json_t *fo;
	size_t i;
	json_array_foreach(json_object_get(json_object_get(k->order, "fulfillmentOrders"), "nodes"), i, fo) {
		json_t *li;
		size_t n;
		const char *fo_id = json_string_value(json_object_get(fo, "id"));
		const char *loc = platform_location_of(fo);
		json_array_foreach(json_object_get(json_object_get(fo, "lineItems"), "nodes"), n, li) {
			const char *id = json_string_value(json_object_get(json_object_get(li, "lineItem"), "id"));
			if (!id || !fo_id || strcmp(id, gid) != 0)
				continue;
			int remaining = (int)json_integer_value(json_object_get(li, "remainingQuantity"));
			if (!platform_fo_open(fo)) {
				found |= remaining == 0; /* a closed one that was fulfilled */
				continue;
			}
			found = 1;
			const char *before = platform_fulfilled_at(k->order, k->number, loc);
			if (before) {
				k->before = k->before ? k->before : before;
				continue;
			}
			int q = remaining < wanted - taken ? remaining : wanted - taken;
			const char *li_id = json_string_value(json_object_get(li, "id"));
			if (q <= 0 || !li_id)
				continue;
			if (k->loc && strcmp(k->loc, loc) != 0) {
				k->more = 1;
				continue;
			}
			k->loc = loc;
			json_array_append_new(platform_fo_group(k->by, fo_id),
			                      json_pack("{s:s, s:i}", "id", li_id, "quantity", q));
			taken += q;
		}
	}
	return found ? taken : -1;
}

/* The answer to the look: done when every line of the parcel is fulfilled
 * (by us before, with its tracking number, or otherwise), else the
 * fulfillment to create from the open fulfillment order line items of one
 * location; a line fulfilled already is skipped. */
static void platform_take_look(struct platform_exchange *x, json_t *doc, struct platform_answer *a)
{
	const struct platform_msg *m = &x->msg;
	struct platform_look k = { .order = json_object_get(json_object_get(doc, "data"), "order"),
	                           .number = m->number };
	if (!json_is_object(k.order)) {
		snprintf(a->why, sizeof a->why, "Shopify has no order %s (or the token may not read it)", m->order_id);
		a->verdict = PLATFORM_FAILED;
		return;
	}
	k.by = json_array();
	size_t taken = 0;
	for (size_t i = 0; i < m->nlines; i++) {
		const struct platform_line *l = &m->lines[i];
		char why[160];
		int q = l->line_item_id ? platform_take_line(&k, l) : -1;
		if (q < 0) {
			snprintf(why, sizeof why, "line %d (line item %.40s) is on no open fulfillment order", l->line,
			         l->line_item_id ? l->line_item_id : "unknown");
			platform_answer(a, PLATFORM_FAILED, why);
			json_decref(k.by);
			return;
		}
		taken += (size_t)q;
	}
	if (taken == 0) {
		const char *before = k.before ? k.before : platform_fulfilled_at(k.order, k.number, NULL);
		snprintf(a->ref, sizeof a->ref, "%s", before ? before : "");
		platform_answer(a, PLATFORM_DONE, before ? "fulfilled before with this tracking number"
		                                         : "every line of the parcel is fulfilled already");
		json_decref(k.by);
		return;
	}
	/* Each location once per exchange: Shopify showing items still open at
	 * a location just fulfilled would otherwise be a loop of fulfillments. */
	for (int i = 0; i < x->nlocations; i++) {
		if (strcmp(x->locations[i], k.loc) == 0) {
			snprintf(a->why, sizeof a->why, "items at location %.100s are still open after fulfilling them",
			         k.loc);
			a->verdict = PLATFORM_FAILED;
			json_decref(k.by);
			return;
		}
	}
	if (x->nlocations < PLATFORM_LOCATIONS_MAX)
		snprintf(x->locations[x->nlocations++], sizeof x->locations[0], "%s", k.loc);
	x->more = k.more;
	json_t *tracking = json_pack("{s:s, s:s}", "company", m->carrier, "number", m->number);
	if (m->url)
		json_object_set_new(tracking, "url", json_string(m->url));
	json_decref(x->create);
	x->create = json_pack("{s:o, s:o, s:b}", "lineItemsByFulfillmentOrder", k.by, "trackingInfo", tracking,
	                      "notifyCustomer", m->notify_customer);
	x->step = PLATFORM_STEP_FULFILLMENT_CREATE;
	a->verdict = PLATFORM_NEXT;
}

static void platform_take_create(struct platform_exchange *x, json_t *doc, struct platform_answer *a)
{
	json_t *payload = json_object_get(json_object_get(doc, "data"), "fulfillmentCreate");
	json_t *errors = json_object_get(payload, "userErrors");
	if (json_array_size(errors)) {
		size_t n = (size_t)snprintf(a->why, sizeof a->why, "userErrors:");
		json_t *e;
		size_t i;
		json_array_foreach(errors, i, e) {
			if (n >= sizeof a->why)
				break;
			json_t *field = json_object_get(e, "field");
			const char *f = json_string_value(json_array_get(field, json_array_size(field) - 1));
			const char *msg = json_string_value(json_object_get(e, "message"));
			n += (size_t)snprintf(a->why + n, sizeof a->why - n, "%s %s%s%.200s", i ? ";" : "",
			                      f ? f : "", f ? ": " : "", msg ? msg : "");
		}
		a->verdict = PLATFORM_FAILED;
		return;
	}
	const char *id = json_string_value(json_object_get(json_object_get(payload, "fulfillment"), "id"));
	if (!id) {
		platform_answer(a, PLATFORM_RETRY, "fulfillmentCreate answered no fulfillment");
		return;
	}
	snprintf(a->ref, sizeof a->ref, "%s", id);
	if (x->more) { /* the parcel's items at the next location */
		x->step = PLATFORM_STEP_FULFILLMENT_ORDERS;
		a->verdict = PLATFORM_NEXT;
		return;
	}
	a->verdict = PLATFORM_DONE;
}

/* A note of the order's that already tells this parcel (a lost answer to
 * our own note): its id, or 0. */
static long long platform_noted_before(json_t *notes, const char *number)
{
	json_t *n;
	size_t i;
	json_array_foreach(notes, i, n) {
		const char *text = json_string_value(json_object_get(n, "note"));
		if (text && strstr(text, number) && json_is_true(json_object_get(n, "customer_note")))
			return json_integer_value(json_object_get(n, "id"));
	}
	return 0;
}

static void platform_take_woo(struct platform_exchange *x, json_t *doc, struct platform_answer *a)
{
	const struct platform_msg *m = &x->msg;
	long long id;
	const char *status;
	switch (x->step) {
	case PLATFORM_STEP_NOTES:
		if (!json_is_array(doc)) {
			platform_answer(a, PLATFORM_RETRY, "the order's notes are not a list");
			return;
		}
		if ((id = platform_noted_before(doc, m->number)) != 0) {
			snprintf(a->ref, sizeof a->ref, "note %lld", id);
			platform_answer(a, PLATFORM_DONE, "noted before with this tracking number");
			return;
		}
		x->step = PLATFORM_STEP_NOTE_CREATE;
		a->verdict = PLATFORM_NEXT;
		return;
	case PLATFORM_STEP_NOTE_CREATE:
		snprintf(a->ref, sizeof a->ref, "note %lld", (long long)json_integer_value(json_object_get(doc, "id")));
		a->verdict = PLATFORM_DONE;
		return;
	case PLATFORM_STEP_ORDER:
		status = json_string_value(json_object_get(doc, "status"));
		if (!status) {
			platform_answer(a, PLATFORM_RETRY, "the order has no status");
		} else if (strcmp(status, "completed") == 0) {
			snprintf(a->ref, sizeof a->ref, "order %s", m->order_id);
			platform_answer(a, PLATFORM_DONE, "the order is completed already");
		} else if (strcmp(status, "cancelled") == 0 || strcmp(status, "refunded") == 0 ||
		           strcmp(status, "failed") == 0 || strcmp(status, "trash") == 0) {
			snprintf(a->why, sizeof a->why, "the order is %.40s in WooCommerce: not completed", status);
			a->verdict = PLATFORM_FAILED;
		} else {
			x->step = PLATFORM_STEP_ORDER_COMPLETE;
			a->verdict = PLATFORM_NEXT;
		}
		return;
	default:
		status = json_string_value(json_object_get(doc, "status"));
		if (!status || strcmp(status, "completed") != 0) {
			snprintf(a->why, sizeof a->why, "the order's status stayed %.40s", status ? status : "unknown");
			a->verdict = PLATFORM_FAILED;
			return;
		}
		snprintf(a->ref, sizeof a->ref, "order %s", m->order_id);
		a->verdict = PLATFORM_DONE;
		return;
	}
}

void platform_exchange_take(struct platform_exchange *x, int status, const char *body, struct platform_answer *a)
{
	memset(a, 0, sizeof *a);
	json_t *doc = body ? json_loads(body, 0, NULL) : NULL;
	if (status == 429 || status == 408 || status >= 500) {
		snprintf(a->why, sizeof a->why, "HTTP %d", status);
		a->verdict = PLATFORM_RETRY;
		if (x->msg.platform == PLATFORM_SHOPIFY && status == 429 && json_object_get(doc, "extensions"))
			a->min_delay_ms = platform_throttle_ms(doc);
	} else if (status < 200 || status >= 300) {
		snprintf(a->why, sizeof a->why, "HTTP %d: %.300s", status, body ? body : "");
		a->verdict = PLATFORM_FAILED;
	} else if (!doc) {
		platform_answer(a, PLATFORM_RETRY, "the answer is not JSON");
	} else if (x->msg.platform == PLATFORM_WOOCOMMERCE) {
		platform_take_woo(x, doc, a);
	} else if (!platform_graphql_errors(doc, a)) {
		if (x->step == PLATFORM_STEP_FULFILLMENT_ORDERS)
			platform_take_look(x, doc, a);
		else
			platform_take_create(x, doc, a);
	}
	if (a->ref[0])
		snprintf(x->ref, sizeof x->ref, "%s", a->ref);
	json_decref(doc);
}

int platform_exchange_init(struct platform_exchange *x, const char *kind, const char *payload,
                           const char *base_url, const char *credential, const char *shopify_api_version,
                           char *err, size_t errlen)
{
	memset(x, 0, sizeof *x);
	if (!base_url || strncmp(base_url, "https://", 8) != 0) {
		platform_err(err, errlen, "the store has no https:// platform URL");
		return -1;
	}
	if (!credential || !*credential) {
		platform_err(err, errlen, "the store has no platform credentials");
		return -1;
	}
	if (platform_msg_parse(kind, payload, &x->msg, err, errlen) < 0)
		return -1;
	size_t n = strlen(base_url);
	while (n > 8 && base_url[n - 1] == '/')
		n--;
	x->base_url = mem_strndup(base_url, n);
	x->credential = mem_strdup(credential);
	snprintf(x->api_version, sizeof x->api_version, "%s", shopify_api_version ? shopify_api_version : "");
	x->step = x->msg.platform == PLATFORM_SHOPIFY ? PLATFORM_STEP_FULFILLMENT_ORDERS
	          : x->msg.completed                  ? PLATFORM_STEP_ORDER
	                                              : PLATFORM_STEP_NOTES;
	return 0;
}

void platform_exchange_free(struct platform_exchange *x)
{
	platform_msg_free(&x->msg);
	free(x->base_url);
	if (x->credential) /* a secret: not left behind in freed memory */
		OPENSSL_cleanse(x->credential, strlen(x->credential));
	free(x->credential);
	json_decref(x->create);
	memset(x, 0, sizeof *x);
}

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "platform/platform.h"
#include "support/harness.h"

#define BASE "https://shop.example"

/* A parcel of lines 1 and 2 (line items 466157049 and 518995019, one each) of Shopify order 450789469. */
static const char shopify_parcel[] =
	"{\"type\":\"platform.fulfillment\",\"platform\":\"shopify\",\"store\":\"s\",\"order_id\":\"1\","
	"\"external_order_id\":\"450789469\",\"tracking\":{\"carrier\":\"ups\",\"number\":\"1Z999AA10123456784\","
	"\"url\":null},\"notify_customer\":true,\"lines\":[{\"line\":1,\"line_item_id\":\"466157049\",\"sku\":\"G\","
	"\"title\":\"Green\",\"quantity\":1},{\"line\":2,\"line_item_id\":\"518995019\",\"sku\":\"R\",\"quantity\":1}]}";

static const char woo_parcel[] =
	"{\"type\":\"platform.fulfillment\",\"platform\":\"woocommerce\",\"external_order_id\":\"727\","
	"\"tracking\":{\"carrier\":\"Royal Mail\",\"number\":\"RM123456785GB\",\"url\":\"https://t.example/RM1\"},"
	"\"lines\":[{\"line\":1,\"line_item_id\":\"315\",\"title\":\"Woo Single #1\",\"quantity\":2}]}";

static const char woo_completed[] =
	"{\"type\":\"platform.completed\",\"platform\":\"woocommerce\",\"external_order_id\":\"727\"}";

/* A fulfillment order line item: gid suffix of the FO line item, of the line item, remaining. */
#define FOLI(id, li, rem) \
	"{\"id\":\"gid://shopify/FulfillmentOrderLineItem/" id "\",\"remainingQuantity\":" #rem \
	",\"totalQuantity\":1,\"lineItem\":{\"id\":\"gid://shopify/LineItem/" li "\"}}"
#define LOOK(fulfillments, status, items) \
	"{\"data\":{\"order\":{\"id\":\"gid://shopify/Order/450789469\",\"fulfillments\":[" fulfillments "]," \
	"\"fulfillmentOrders\":{\"nodes\":[{\"id\":\"gid://shopify/FulfillmentOrder/9\",\"status\":\"" status "\"," \
	"\"lineItems\":{\"nodes\":[" items "]}}]}}},\"extensions\":{\"cost\":{\"requestedQueryCost\":42," \
	"\"actualQueryCost\":9,\"throttleStatus\":{\"maximumAvailable\":2000.0,\"currentlyAvailable\":1991," \
	"\"restoreRate\":100.0}}}}"
#define THREE_OPEN FOLI("1", "466157049", 1) "," FOLI("2", "518995019", 1) "," FOLI("3", "703073504", 1)

static void test_carriers(void)
{
	static const struct {
		const char *given, *want;
	} cases[] = {
		{ "ups", "UPS" }, { "UPS", "UPS" }, { "United Parcel Service", "UPS" }, { "u.p.s.", "UPS" },
		{ "usps", "USPS" }, { "U.S. Postal Service", "USPS" }, { "Fed Ex", "FedEx" }, { "FEDEX", "FedEx" },
		{ "Federal Express", "FedEx" }, { "dhl", "DHL Express" }, { "DHL Express", "DHL Express" },
		{ "DHL eCommerce", "DHL eCommerce" }, { "royal-mail", "Royal Mail" }, { "Canada Post", "Canada Post" },
		{ "Hermes UK", "Evri" }, { "ontrac", "OnTrac" },
		/* no match: as given */
		{ "SIMPOST", "SIMPOST" }, { "Acme Freight", "Acme Freight" }, { "", "" },
		{ "UPS Freight Worldwide Logistics Division Of Something Very Long", "UPS Freight Worldwide Logistics "
		  "Division Of Something Very Long" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		HARNESS_CHECK(strcmp(platform_carrier(cases[i].given), cases[i].want) == 0, "%s: got %s", cases[i].given,
		              platform_carrier(cases[i].given));
	CU_ASSERT_PTR_NULL(platform_carrier(NULL));
}

static void test_tracking_urls(void)
{
	static const struct {
		const char *carrier, *number, *want; /* NULL: none */
	} cases[] = {
		{ "ups", "1Z999AA10123456784", "https://www.ups.com/track?tracknum=1Z999AA10123456784" },
		{ "USPS", "9400111899223100000001", "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223100000001" },
		{ "Fed Ex", "449044304137821", "https://www.fedex.com/fedextrack/?trknbr=449044304137821" },
		{ "DHL", "1234567890",
		  "https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&tracking-id=1234567890" },
		{ "Royal Mail", "RM123456785GB", "https://www.royalmail.com/track-your-item#/tracking-results/RM123456785GB" },
		{ "GLS", "123", NULL },            /* known, but no URL kept */
		{ "SIMPOST", "SIM1", NULL },       /* unknown */
		{ "UPS", "1Z 999", NULL },         /* not URL-safe */
		{ "UPS", "1Z&x=1", NULL },
		{ "UPS", "", NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[256] = "";
		int got = platform_tracking_url(cases[i].carrier, cases[i].number, buf, sizeof buf);
		HARNESS_CHECK(got == (cases[i].want != NULL) && (!got || strcmp(buf, cases[i].want) == 0),
		              "%s %s: got %d %s", cases[i].carrier, cases[i].number, got, buf);
	}
}

static void test_bad_messages(void)
{
	static const struct {
		const char *kind, *payload, *why;
	} cases[] = {
		{ "platform.fulfillment", "not json", "no platform" },
		{ "platform.fulfillment", "{\"platform\":\"magento\",\"external_order_id\":\"1\"}", "unknown platform" },
		{ "platform.fulfillment", "{\"platform\":\"shopify\",\"external_order_id\":\"../1\"}", "digits" },
		{ "platform.fulfillment", "{\"platform\":\"shopify\",\"external_order_id\":\"1\",\"lines\":[]}",
		  "carrier and number" },
		{ "platform.fulfillment", "{\"platform\":\"shopify\",\"external_order_id\":\"1\",\"tracking\":"
		  "{\"carrier\":\"UPS\",\"number\":\"1\"},\"lines\":[]}", "at least one line" },
		{ "platform.fulfillment", "{\"platform\":\"shopify\",\"external_order_id\":\"1\",\"tracking\":"
		  "{\"carrier\":\"UPS\",\"number\":\"1\"},\"lines\":[{\"line\":1,\"quantity\":0}]}", "lines[0]" },
		{ "platform.completed", "{\"platform\":\"shopify\",\"external_order_id\":\"1\"}", "WooCommerce stores only" },
		{ "order.shipped", "{\"platform\":\"shopify\",\"external_order_id\":\"1\"}", "unknown message kind" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct platform_msg m;
		char err[200] = "";
		int rc = platform_msg_parse(cases[i].kind, cases[i].payload, &m, err, sizeof err);
		HARNESS_CHECK(rc < 0 && strstr(err, cases[i].why), "case %zu: rc %d err %s", i, rc, err);
	}
	struct platform_exchange x;
	char err[200];
	CU_ASSERT_EQUAL(platform_exchange_init(&x, "platform.fulfillment", shopify_parcel, "http://shop.example", "t",
	                                       "2026-10", err, sizeof err), -1);
	CU_ASSERT_EQUAL(platform_exchange_init(&x, "platform.fulfillment", shopify_parcel, BASE, "", "2026-10", err,
	                                       sizeof err), -1);
}

/* The look and the create's requests, as Shopify's Admin GraphQL API takes them. */
static void test_shopify_requests(void)
{
	struct platform_exchange x;
	struct platform_request r;
	char err[200];
	CU_ASSERT_EQUAL_FATAL(platform_exchange_init(&x, "platform.fulfillment", shopify_parcel, BASE "//", "shpat_1",
	                                             "2026-10", err, sizeof err), 0);
	CU_ASSERT_EQUAL(x.step, PLATFORM_STEP_FULFILLMENT_ORDERS);
	platform_exchange_request(&x, &r);
	CU_ASSERT_STRING_EQUAL(r.method, "POST");
	CU_ASSERT_STRING_EQUAL(r.url, BASE "/admin/api/2026-10/graphql.json");
	CU_ASSERT_STRING_EQUAL(r.path, "/admin/api/2026-10/graphql.json");
	CU_ASSERT_STRING_EQUAL(r.headers[0], "X-Shopify-Access-Token");
	CU_ASSERT_STRING_EQUAL(r.headers[1], "shpat_1");
	json_t *doc = json_loads(r.body, 0, NULL);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(doc, "variables"), "id")),
	                       "gid://shopify/Order/450789469");
	CU_ASSERT_PTR_NOT_NULL(strstr(json_string_value(json_object_get(doc, "query")), "fulfillmentOrders"));
	json_decref(doc);
	platform_request_free(&r);

	struct platform_answer a;
	platform_exchange_take(&x, 200, LOOK("", "OPEN", THREE_OPEN), &a);
	CU_ASSERT_EQUAL_FATAL(a.verdict, PLATFORM_NEXT);
	CU_ASSERT_EQUAL(x.step, PLATFORM_STEP_FULFILLMENT_CREATE);
	platform_exchange_request(&x, &r);
	doc = json_loads(r.body, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(json_string_value(json_object_get(doc, "query")), "fulfillmentCreate("));
	json_t *want = json_loads("{\"lineItemsByFulfillmentOrder\":[{\"fulfillmentOrderId\":"
	                          "\"gid://shopify/FulfillmentOrder/9\",\"fulfillmentOrderLineItems\":["
	                          "{\"id\":\"gid://shopify/FulfillmentOrderLineItem/1\",\"quantity\":1},"
	                          "{\"id\":\"gid://shopify/FulfillmentOrderLineItem/2\",\"quantity\":1}]}],"
	                          "\"trackingInfo\":{\"company\":\"UPS\",\"number\":\"1Z999AA10123456784\","
	                          "\"url\":\"https://www.ups.com/track?tracknum=1Z999AA10123456784\"},"
	                          "\"notifyCustomer\":true}", 0, NULL);
	CU_ASSERT(json_equal(json_object_get(json_object_get(doc, "variables"), "fulfillment"), want));
	json_decref(want);
	json_decref(doc);
	platform_request_free(&r);
	platform_exchange_take(&x, 200, "{\"data\":{\"fulfillmentCreate\":{\"fulfillment\":{\"id\":"
	                       "\"gid://shopify/Fulfillment/77\",\"status\":\"SUCCESS\"},\"userErrors\":[]}}}", &a);
	CU_ASSERT_EQUAL(a.verdict, PLATFORM_DONE);
	CU_ASSERT_STRING_EQUAL(a.ref, "gid://shopify/Fulfillment/77");
	CU_ASSERT_STRING_EQUAL(x.ref, "gid://shopify/Fulfillment/77");
	platform_exchange_free(&x);
}

/* What each answer to the look and to the create means. */
static void test_shopify_answers(void)
{
	static const struct {
		int create;                /* the answer is the create's (after an open look) */
		int status;
		const char *body;
		enum platform_verdict want;
		long long delay;           /* RETRY: min_delay_ms */
		const char *why_or_ref;    /* in why (or ref, for DONE) */
	} cases[] = {
		/* the look */
		{ 0, 200, LOOK("{\"id\":\"gid://shopify/Fulfillment/5\",\"status\":\"SUCCESS\",\"trackingInfo\":"
		               "[{\"company\":\"UPS\",\"number\":\"1Z999AA10123456784\",\"url\":null}]}", "CLOSED",
		               FOLI("1", "466157049", 0) "," FOLI("2", "518995019", 0)),
		  PLATFORM_DONE, 0, "gid://shopify/Fulfillment/5" },
		{ 0, 200, LOOK("{\"id\":\"gid://shopify/Fulfillment/6\",\"status\":\"CANCELLED\",\"trackingInfo\":"
		               "[{\"number\":\"1Z999AA10123456784\"}]}", "OPEN", THREE_OPEN),
		  PLATFORM_NEXT, 0, "" },
		{ 0, 200, LOOK("", "CLOSED", FOLI("1", "466157049", 0) "," FOLI("2", "518995019", 0)), PLATFORM_DONE, 0,
		  "" },
		{ 0, 200, LOOK("", "OPEN", FOLI("3", "703073504", 1)), PLATFORM_FAILED, 0,
		  "line 1 (line item 466157049) is on no open fulfillment order" },
		{ 0, 200, LOOK("", "ON_HOLD", THREE_OPEN), PLATFORM_FAILED, 0, "on no open fulfillment order" },
		{ 0, 200, "{\"data\":{\"order\":null}}", PLATFORM_FAILED, 0, "Shopify has no order 450789469" },
		{ 0, 200, "{\"errors\":[{\"message\":\"Throttled\",\"extensions\":{\"code\":\"THROTTLED\"}}],"
		          "\"extensions\":{\"cost\":{\"requestedQueryCost\":42,\"actualQueryCost\":null,"
		          "\"throttleStatus\":{\"maximumAvailable\":2000.0,\"currentlyAvailable\":12,\"restoreRate\":100.0}}}}",
		  PLATFORM_RETRY, 1000, "throttled" },
		{ 0, 200, "{\"errors\":[{\"message\":\"Throttled\"}],\"extensions\":{\"cost\":{\"requestedQueryCost\":502,"
		          "\"throttleStatus\":{\"maximumAvailable\":1000.0,\"currentlyAvailable\":100,\"restoreRate\":50.0}}}}",
		  PLATFORM_RETRY, 8040, "throttled" },
		{ 0, 429, "{\"errors\":\"Exceeded 2 calls per second for api client.\"}", PLATFORM_RETRY, 0, "HTTP 429" },
		{ 0, 503, "", PLATFORM_RETRY, 0, "HTTP 503" },
		{ 0, 401, "{\"errors\":\"[API] Invalid API key or access token\"}", PLATFORM_FAILED, 0,
		  "HTTP 401: {\"errors\":\"[API] Invalid API key" },
		{ 0, 200, "{\"errors\":[{\"message\":\"Access denied for order field.\",\"extensions\":"
		          "{\"code\":\"ACCESS_DENIED\"}}]}", PLATFORM_FAILED, 0, "GraphQL error ACCESS_DENIED: Access denied" },
		{ 0, 200, "{\"errors\":[{\"message\":\"Internal error\",\"extensions\":{\"code\":\"INTERNAL_SERVER_ERROR\"}}]}",
		  PLATFORM_RETRY, 0, "INTERNAL_SERVER_ERROR" },
		{ 0, 200, "<html>", PLATFORM_RETRY, 0, "not JSON" },
		/* the create */
		{ 1, 200, "{\"data\":{\"fulfillmentCreate\":{\"fulfillment\":null,\"userErrors\":[{\"field\":[\"fulfillment\"],"
		          "\"message\":\"Invalid fulfillment order line item quantity requested.\"}]}}}", PLATFORM_FAILED, 0,
		  "userErrors: fulfillment: Invalid fulfillment order line item quantity requested." },
		{ 1, 200, "{\"data\":{\"fulfillmentCreate\":{\"fulfillment\":null,\"userErrors\":[]}}}", PLATFORM_RETRY, 0,
		  "no fulfillment" },
		{ 1, 502, "bad gateway", PLATFORM_RETRY, 0, "HTTP 502" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct platform_exchange x;
		struct platform_answer a;
		char err[200];
		CU_ASSERT_EQUAL_FATAL(platform_exchange_init(&x, "platform.fulfillment", shopify_parcel, BASE, "t",
		                                             "2026-10", err, sizeof err), 0);
		if (cases[i].create) {
			platform_exchange_take(&x, 200, LOOK("", "OPEN", THREE_OPEN), &a);
			CU_ASSERT_EQUAL_FATAL(a.verdict, PLATFORM_NEXT);
		}
		platform_exchange_take(&x, cases[i].status, cases[i].body, &a);
		const char *text = a.verdict == PLATFORM_DONE && a.ref[0] ? a.ref : a.why;
		HARNESS_CHECK(a.verdict == cases[i].want && a.min_delay_ms == cases[i].delay &&
		              strstr(text, cases[i].why_or_ref), "case %zu: verdict %d delay %lld why %s ref %s", i,
		              (int)a.verdict, a.min_delay_ms, a.why, a.ref);
		platform_exchange_free(&x);
	}
}

/* A line partly fulfilled already (by the merchant): only what remains is taken. */
static void test_shopify_takes_what_remains(void)
{
	static const char parcel[] =
		"{\"platform\":\"shopify\",\"external_order_id\":\"5\",\"tracking\":{\"carrier\":\"Acme Freight\","
		"\"number\":\"AF-1\",\"url\":\"https://acme.example/t/AF-1\"},\"notify_customer\":false,"
		"\"lines\":[{\"line\":1,\"line_item_id\":\"11\",\"quantity\":3}]}";
	struct platform_exchange x;
	struct platform_answer a;
	struct platform_request r;
	char err[200];
	CU_ASSERT_EQUAL_FATAL(platform_exchange_init(&x, "platform.fulfillment", parcel, BASE, "t", "2026-10", err,
	                                             sizeof err), 0);
	platform_exchange_take(&x, 200, "{\"data\":{\"order\":{\"fulfillments\":[],\"fulfillmentOrders\":{\"nodes\":["
	                       "{\"id\":\"FO1\",\"status\":\"IN_PROGRESS\",\"lineItems\":{\"nodes\":["
	                       "{\"id\":\"A\",\"remainingQuantity\":2,\"lineItem\":{\"id\":\"gid://shopify/LineItem/11\"}}]}},"
	                       "{\"id\":\"FO2\",\"status\":\"OPEN\",\"lineItems\":{\"nodes\":["
	                       "{\"id\":\"B\",\"remainingQuantity\":5,\"lineItem\":{\"id\":\"gid://shopify/LineItem/11\"}}]}}"
	                       "]}}}}", &a);
	CU_ASSERT_EQUAL_FATAL(a.verdict, PLATFORM_NEXT);
	platform_exchange_request(&x, &r);
	json_t *doc = json_loads(r.body, 0, NULL);
	json_t *want = json_loads("{\"lineItemsByFulfillmentOrder\":["
	                          "{\"fulfillmentOrderId\":\"FO1\",\"fulfillmentOrderLineItems\":[{\"id\":\"A\",\"quantity\":2}]},"
	                          "{\"fulfillmentOrderId\":\"FO2\",\"fulfillmentOrderLineItems\":[{\"id\":\"B\",\"quantity\":1}]}],"
	                          "\"trackingInfo\":{\"company\":\"Acme Freight\",\"number\":\"AF-1\","
	                          "\"url\":\"https://acme.example/t/AF-1\"},\"notifyCustomer\":false}", 0, NULL);
	CU_ASSERT(json_equal(json_object_get(json_object_get(doc, "variables"), "fulfillment"), want));
	json_decref(want);
	json_decref(doc);
	platform_request_free(&r);
	platform_exchange_free(&x);
}

/* Fulfillment orders at locations, and fulfillments with a location. */
#define FO_AT(id, status, loc, items) \
	"{\"id\":\"gid://shopify/FulfillmentOrder/" id "\",\"status\":\"" status "\",\"assignedLocation\":" \
	"{\"location\":{\"id\":\"gid://shopify/Location/" loc "\"}},\"lineItems\":{\"nodes\":[" items "]}}"
#define FULFILLED_AT(id, loc) \
	"{\"id\":\"gid://shopify/Fulfillment/" id "\",\"status\":\"SUCCESS\",\"location\":{\"id\":" \
	"\"gid://shopify/Location/" loc "\"},\"trackingInfo\":[{\"company\":\"UPS\",\"number\":\"1Z999AA10123456784\"}]}"
#define LOOK_AT(fulfillments, fos) \
	"{\"data\":{\"order\":{\"id\":\"gid://shopify/Order/450789469\",\"fulfillments\":[" fulfillments "]," \
	"\"fulfillmentOrders\":{\"nodes\":[" fos "]}}}}"
#define CREATED(id) \
	"{\"data\":{\"fulfillmentCreate\":{\"fulfillment\":{\"id\":\"gid://shopify/Fulfillment/" id "\"," \
	"\"status\":\"SUCCESS\"},\"userErrors\":[]}}}"
/* Line 1 of the parcel at location 1, line 2 at location 2. */
#define AT_1 FO_AT("A", "OPEN", "1", FOLI("1", "466157049", 1))
#define AT_2 FO_AT("B", "OPEN", "2", FOLI("2", "518995019", 1))
#define AT_1_DONE FO_AT("A", "CLOSED", "1", FOLI("1", "466157049", 0))

/* The fulfillment order ids of the create the exchange would send now. */
static void check_create_of(struct platform_exchange *x, const char *want)
{
	struct platform_request r;
	platform_exchange_request(x, &r);
	json_t *doc = json_loads(r.body, 0, NULL);
	json_t *by = json_object_get(json_object_get(json_object_get(doc, "variables"), "fulfillment"),
	                             "lineItemsByFulfillmentOrder");
	char got[200] = "";
	size_t n = 0;
	json_t *g;
	size_t i;
	json_array_foreach(by, i, g)
		n += (size_t)snprintf(got + n, sizeof got - n, "%s%s", i ? " " : "",
		                      json_string_value(json_object_get(g, "fulfillmentOrderId")));
	HARNESS_CHECK(strcmp(got, want) == 0, "create of %s, want %s", got, want);
	json_decref(doc);
	platform_request_free(&r);
}

/* Shopify fulfils one location's fulfillment orders per fulfillmentCreate:
 * a parcel at two locations gets one fulfillment at each, in one exchange;
 * a retry after a lost answer skips the location fulfilled already; a
 * location still open after its fulfillment ends the exchange, not loops. */
static void test_shopify_locations(void)
{
	struct platform_exchange x;
	struct platform_answer a;
	char err[200];
	CU_ASSERT_EQUAL_FATAL(platform_exchange_init(&x, "platform.fulfillment", shopify_parcel, BASE, "t", "2026-10",
	                                             err, sizeof err), 0);
	platform_exchange_take(&x, 200, LOOK_AT("", AT_1 "," AT_2), &a);
	CU_ASSERT_EQUAL_FATAL(a.verdict, PLATFORM_NEXT);
	check_create_of(&x, "gid://shopify/FulfillmentOrder/A");
	platform_exchange_take(&x, 200, CREATED("71"), &a);
	CU_ASSERT_EQUAL(a.verdict, PLATFORM_NEXT);
	CU_ASSERT_EQUAL(x.step, PLATFORM_STEP_FULFILLMENT_ORDERS);
	CU_ASSERT_STRING_EQUAL(a.ref, "gid://shopify/Fulfillment/71");
	platform_exchange_take(&x, 200, LOOK_AT(FULFILLED_AT("71", "1"), AT_1_DONE "," AT_2), &a);
	CU_ASSERT_EQUAL_FATAL(a.verdict, PLATFORM_NEXT);
	check_create_of(&x, "gid://shopify/FulfillmentOrder/B");
	platform_exchange_take(&x, 200, CREATED("72"), &a);
	CU_ASSERT_EQUAL(a.verdict, PLATFORM_DONE);
	CU_ASSERT_STRING_EQUAL(a.ref, "gid://shopify/Fulfillment/72");
	platform_exchange_free(&x);

	/* Tried again after the answer to the first create was lost: location 1
	 * has the parcel's tracking number, even if its items still show open. */
	CU_ASSERT_EQUAL_FATAL(platform_exchange_init(&x, "platform.fulfillment", shopify_parcel, BASE, "t", "2026-10",
	                                             err, sizeof err), 0);
	platform_exchange_take(&x, 200, LOOK_AT(FULFILLED_AT("71", "1"), AT_1 "," AT_2), &a);
	CU_ASSERT_EQUAL_FATAL(a.verdict, PLATFORM_NEXT);
	check_create_of(&x, "gid://shopify/FulfillmentOrder/B");
	platform_exchange_free(&x);

	/* Both fulfilled before: done, with the parcel's fulfillment as ref. */
	CU_ASSERT_EQUAL_FATAL(platform_exchange_init(&x, "platform.fulfillment", shopify_parcel, BASE, "t", "2026-10",
	                                             err, sizeof err), 0);
	platform_exchange_take(&x, 200, LOOK_AT(FULFILLED_AT("71", "1") "," FULFILLED_AT("72", "2"), AT_1 "," AT_2), &a);
	CU_ASSERT_EQUAL(a.verdict, PLATFORM_DONE);
	CU_ASSERT_STRING_EQUAL(a.ref, "gid://shopify/Fulfillment/71");
	platform_exchange_free(&x);

	/* Location 1 still open, and no fulfillment there, after creating one. */
	CU_ASSERT_EQUAL_FATAL(platform_exchange_init(&x, "platform.fulfillment", shopify_parcel, BASE, "t", "2026-10",
	                                             err, sizeof err), 0);
	platform_exchange_take(&x, 200, LOOK_AT("", AT_1 "," AT_2), &a);
	platform_exchange_take(&x, 200, CREATED("71"), &a);
	CU_ASSERT_EQUAL_FATAL(a.verdict, PLATFORM_NEXT);
	platform_exchange_take(&x, 200, LOOK_AT("", AT_1 "," AT_2), &a);
	CU_ASSERT_EQUAL(a.verdict, PLATFORM_FAILED);
	CU_ASSERT_PTR_NOT_NULL(strstr(a.why, "gid://shopify/Location/1 are still open"));
	platform_exchange_free(&x);
}

/* WooCommerce: the note's steps, the completion's steps, and their requests. */
static void test_woocommerce(void)
{
	struct platform_exchange x;
	struct platform_request r;
	struct platform_answer a;
	char err[200];
	CU_ASSERT_EQUAL_FATAL(platform_exchange_init(&x, "platform.fulfillment", woo_parcel, BASE, "ck_a:cs_b", "",
	                                             err, sizeof err), 0);
	platform_exchange_request(&x, &r);
	CU_ASSERT_STRING_EQUAL(r.method, "GET");
	CU_ASSERT_STRING_EQUAL(r.url, BASE "/wp-json/wc/v3/orders/727/notes?type=customer");
	CU_ASSERT_PTR_NULL(r.body);
	CU_ASSERT_STRING_EQUAL(r.headers[0], "Authorization");
	CU_ASSERT_STRING_EQUAL(r.headers[1], "Basic Y2tfYTpjc19i"); /* base64("ck_a:cs_b") */
	platform_request_free(&r);
	/* someone else's note with another number: ours is still to add */
	platform_exchange_take(&x, 200, "[{\"id\":1,\"note\":\"Shipped with UPS, tracking number 1Z1.\","
	                       "\"customer_note\":true}]", &a);
	CU_ASSERT_EQUAL_FATAL(a.verdict, PLATFORM_NEXT);
	platform_exchange_request(&x, &r);
	CU_ASSERT_STRING_EQUAL(r.method, "POST");
	CU_ASSERT_STRING_EQUAL(r.url, BASE "/wp-json/wc/v3/orders/727/notes");
	json_t *doc = json_loads(r.body, 0, NULL);
	CU_ASSERT(json_is_true(json_object_get(doc, "customer_note")));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(doc, "note")),
	                       "Shipped with Royal Mail, tracking number RM123456785GB. Track it at "
	                       "https://t.example/RM1\nIn this parcel: 2 x Woo Single #1");
	json_decref(doc);
	platform_request_free(&r);
	platform_exchange_take(&x, 201, "{\"id\":281,\"note\":\"...\",\"customer_note\":true}", &a);
	CU_ASSERT_EQUAL(a.verdict, PLATFORM_DONE);
	CU_ASSERT_STRING_EQUAL(a.ref, "note 281");
	platform_exchange_free(&x);

	/* tried again after a lost answer: the note is there */
	CU_ASSERT_EQUAL_FATAL(platform_exchange_init(&x, "platform.fulfillment", woo_parcel, BASE, "k:s", "", err,
	                                             sizeof err), 0);
	platform_exchange_take(&x, 200, "[{\"id\":281,\"note\":\"Shipped with Royal Mail, tracking number "
	                       "RM123456785GB.\",\"customer_note\":true}]", &a);
	CU_ASSERT_EQUAL(a.verdict, PLATFORM_DONE);
	CU_ASSERT_STRING_EQUAL(a.ref, "note 281");
	platform_exchange_free(&x);

	static const struct {
		const char *status;
		enum platform_verdict want;
	} cases[] = {
		{ "processing", PLATFORM_NEXT }, { "on-hold", PLATFORM_NEXT }, { "completed", PLATFORM_DONE },
		{ "refunded", PLATFORM_FAILED }, { "cancelled", PLATFORM_FAILED }, { NULL, PLATFORM_RETRY },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		CU_ASSERT_EQUAL_FATAL(platform_exchange_init(&x, "platform.completed", woo_completed, BASE, "k:s", "",
		                                             err, sizeof err), 0);
		CU_ASSERT_EQUAL(x.step, PLATFORM_STEP_ORDER);
		char body[128];
		snprintf(body, sizeof body, cases[i].status ? "{\"id\":727,\"status\":\"%s\"}" : "{\"id\":727}",
		         cases[i].status);
		platform_exchange_take(&x, 200, body, &a);
		HARNESS_CHECK(a.verdict == cases[i].want, "status %s: verdict %d", cases[i].status, (int)a.verdict);
		if (a.verdict == PLATFORM_NEXT) {
			platform_exchange_request(&x, &r);
			CU_ASSERT_STRING_EQUAL(r.method, "PUT");
			CU_ASSERT_STRING_EQUAL(r.url, BASE "/wp-json/wc/v3/orders/727");
			CU_ASSERT_STRING_EQUAL(r.body, "{\"status\":\"completed\"}");
			platform_request_free(&r);
			platform_exchange_take(&x, 200, "{\"id\":727,\"status\":\"completed\"}", &a);
			CU_ASSERT_EQUAL(a.verdict, PLATFORM_DONE);
			CU_ASSERT_STRING_EQUAL(a.ref, "order 727");
		}
		platform_exchange_free(&x);
	}
	/* an order WooCommerce does not know is for someone to look at */
	CU_ASSERT_EQUAL_FATAL(platform_exchange_init(&x, "platform.completed", woo_completed, BASE, "k:s", "", err,
	                                             sizeof err), 0);
	platform_exchange_take(&x, 404, "{\"code\":\"woocommerce_rest_shop_order_invalid_id\",\"message\":\"Invalid ID.\"}",
	                       &a);
	CU_ASSERT_EQUAL(a.verdict, PLATFORM_FAILED);
	CU_ASSERT_PTR_NOT_NULL(strstr(a.why, "woocommerce_rest_shop_order_invalid_id"));
	platform_exchange_free(&x);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "carrier names normalised to the platforms' companies", test_carriers },
		{ "tracking URLs for the big carriers", test_tracking_urls },
		{ "messages that can never be sent", test_bad_messages },
		{ "shopify: the look and the create as requests", test_shopify_requests },
		{ "shopify: what each answer means", test_shopify_answers },
		{ "shopify: only what remains of a line is fulfilled", test_shopify_takes_what_remains },
		{ "shopify: a parcel at two locations, one fulfillment each", test_shopify_locations },
		{ "woocommerce: notes and completion", test_woocommerce },
		{ NULL, NULL },
	};
	return harness_main("platform", NULL, NULL, tests);
}

/* The request state machine: every state × event pair against the table
 * written out independently here from docs/callbacks.md; the callback
 * parser's table of cases; a parcel's items; the decision as a whole. */
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "lifecycle/lifecycle.h"
#include "support/harness.h"

#define P LIFECYCLE_PENDING
#define S LIFECYCLE_SENT
#define A LIFECYCLE_ACCEPTED
#define R LIFECYCLE_REJECTED
#define H LIFECYCLE_SHIPPED
#define D LIFECYCLE_DELIVERED
#define C LIFECYCLE_CANCELLED
#define F LIFECYCLE_FAILED
#define APPLY(to) { LIFECYCLE_APPLY, to }
#define REPEAT { LIFECYCLE_REPEAT, -1 }
#define NO { LIFECYCLE_ILLEGAL, -1 }

struct expect {
	enum lifecycle_result result;
	int to;
};

/* Rows: from-state; columns: accepted, rejected, shipped, delivered, cancelled, failed. */
static const struct expect table[LIFECYCLE_STATE_MAX][LIFECYCLE_EVENT_MAX] = {
	[P] = { APPLY(A), NO, NO, NO, APPLY(C), APPLY(F) },
	[S] = { APPLY(A), APPLY(R), NO, NO, APPLY(C), NO },
	[A] = { REPEAT, APPLY(R), APPLY(H), NO, APPLY(C), NO },
	[R] = { NO, REPEAT, NO, NO, NO, NO },
	[H] = { NO, NO, REPEAT, APPLY(D), NO, NO },
	[D] = { NO, NO, NO, REPEAT, NO, NO },
	[C] = { NO, NO, NO, NO, REPEAT, NO },
	[F] = { NO, NO, NO, NO, NO, REPEAT },
};

static void test_every_pair(void)
{
	int checked = 0;
	for (int s = 0; s < LIFECYCLE_STATE_MAX; s++)
		for (int e = 0; e < LIFECYCLE_EVENT_MAX; e++) {
			enum lifecycle_state to = (enum lifecycle_state)-1;
			enum lifecycle_result r = lifecycle_apply((enum lifecycle_state)s, (enum lifecycle_event)e, &to);
			CU_ASSERT_EQUAL(r, table[s][e].result);
			/* on no move, `to` is left untouched */
			int want = table[s][e].result == LIFECYCLE_APPLY ? table[s][e].to : -1;
			CU_ASSERT_EQUAL((int)to, want);
			checked++;
		}
	CU_ASSERT_EQUAL(checked, 8 * 6);
}

static void test_names_round_trip(void)
{
	for (int s = 0; s < LIFECYCLE_STATE_MAX; s++) {
		enum lifecycle_state back;
		CU_ASSERT_EQUAL(lifecycle_state_parse(lifecycle_state_name((enum lifecycle_state)s), &back), 0);
		CU_ASSERT_EQUAL((int)back, s);
	}
	for (int e = 0; e < LIFECYCLE_EVENT_MAX; e++) {
		enum lifecycle_event back;
		CU_ASSERT_EQUAL(lifecycle_event_parse(lifecycle_event_name((enum lifecycle_event)e), &back), 0);
		CU_ASSERT_EQUAL((int)back, e);
	}
	enum lifecycle_event ev;
	CU_ASSERT_EQUAL(lifecycle_event_parse("fulfillment.shipped", &ev), 0);
	CU_ASSERT_EQUAL(ev, LIFECYCLE_EV_SHIPPED);
	CU_ASSERT_EQUAL(lifecycle_event_parse("shipped", &ev), -1);
	CU_ASSERT_EQUAL(lifecycle_event_parse("fulfillment.requested", &ev), -1);
	enum lifecycle_state st;
	CU_ASSERT_EQUAL(lifecycle_state_parse("lost", &st), -1);
	CU_ASSERT_STRING_EQUAL(lifecycle_state_name(LIFECYCLE_STATE_MAX), "?");
}

static void test_out_of_range(void)
{
	enum lifecycle_state to = LIFECYCLE_PENDING;
	CU_ASSERT_EQUAL(lifecycle_apply(LIFECYCLE_STATE_MAX, LIFECYCLE_EV_ACCEPTED, &to), LIFECYCLE_ILLEGAL);
	CU_ASSERT_EQUAL(lifecycle_apply(LIFECYCLE_SENT, LIFECYCLE_EVENT_MAX, &to), LIFECYCLE_ILLEGAL);
	CU_ASSERT_EQUAL(to, LIFECYCLE_PENDING);
}

#define RID "0f8fad5b-d9cb-469f-a165-70867728950e"

/* One parser case: a body and the field it must be refused for ("" for
 * the body as a whole), or NULL when it must parse. */
struct parse_case {
	const char *body;
	const char *code;   /* NULL: parses */
	const char *field;
};

static const struct parse_case parse_cases[] = {
	{ "{\"type\":\"fulfillment.accepted\",\"request_id\":\"" RID "\"}", NULL, NULL },
	{ "{\"type\":\"fulfillment.rejected\",\"request_id\":\"" RID "\",\"reason\":\"out_of_stock\"}", NULL, NULL },
	{ "{\"type\":\"fulfillment.shipped\",\"request_id\":\"" RID "\",\"occurred_at\":\"2026-11-23T08:00:00Z\","
	  "\"tracking\":{\"carrier\":\"UPS\",\"number\":\"1Z9\",\"url\":null},\"items\":[{\"line\":2},{\"line\":1}]}",
	  NULL, NULL },
	{ "{\"type\":\"fulfillment.delivered\",\"request_id\":\"" RID "\",\"tracking\":null,\"items\":null}", NULL, NULL },
	{ "{\"type\":", "invalid_json", "" },
	{ "{\"type\":\"fulfillment.accepted\",\"type\":\"fulfillment.accepted\",\"request_id\":\"" RID "\"}",
	  "invalid_json", "" },
	{ "[1,2]", "invalid_field", "" },
	{ "{\"request_id\":\"" RID "\"}", "invalid_field", "type" },
	{ "{\"type\":\"fulfillment.requested\",\"request_id\":\"" RID "\"}", "invalid_field", "type" },
	{ "{\"type\":\"fulfillment.failed\",\"request_id\":\"" RID "\"}", "invalid_field", "type" },
	{ "{\"type\":7,\"request_id\":\"" RID "\"}", "invalid_field", "type" },
	{ "{\"type\":\"fulfillment.accepted\"}", "invalid_field", "request_id" },
	{ "{\"type\":\"fulfillment.accepted\",\"request_id\":\"42\"}", "invalid_field", "request_id" },
	{ "{\"type\":\"fulfillment.accepted\",\"request_id\":\"0f8fad5b-d9cb-469f-a165-70867728950z\"}",
	  "invalid_field", "request_id" },
	{ "{\"type\":\"fulfillment.accepted\",\"request_id\":\"" RID "\",\"occurred_at\":\"yesterday\"}",
	  "invalid_field", "occurred_at" },
	{ "{\"type\":\"fulfillment.shipped\",\"request_id\":\"" RID "\",\"tracking\":{\"number\":\"1Z9\"}}",
	  "invalid_field", "tracking.carrier" },
	{ "{\"type\":\"fulfillment.shipped\",\"request_id\":\"" RID "\",\"tracking\":{\"carrier\":\"UPS\",\"number\":\"\"}}",
	  "invalid_field", "tracking.number" },
	{ "{\"type\":\"fulfillment.shipped\",\"request_id\":\"" RID "\",\"tracking\":\"UPS 1Z9\"}",
	  "invalid_field", "tracking" },
	{ "{\"type\":\"fulfillment.shipped\",\"request_id\":\"" RID "\",\"tracking\":{\"carrier\":1,\"number\":\"1\"}}",
	  "invalid_field", "tracking.carrier" },
	{ "{\"type\":\"fulfillment.accepted\",\"request_id\":\"" RID "\",\"items\":[{\"line\":1}]}",
	  "invalid_field", "items" },
	{ "{\"type\":\"fulfillment.shipped\",\"request_id\":\"" RID "\",\"tracking\":{\"carrier\":\"UPS\",\"number\":\"1\"},"
	  "\"items\":[]}", "invalid_field", "items" },
	{ "{\"type\":\"fulfillment.shipped\",\"request_id\":\"" RID "\",\"tracking\":{\"carrier\":\"UPS\",\"number\":\"1\"},"
	  "\"items\":[{\"line\":1},{\"line\":0}]}", "invalid_field", "items[1].line" },
	{ "{\"type\":\"fulfillment.shipped\",\"request_id\":\"" RID "\",\"tracking\":{\"carrier\":\"UPS\",\"number\":\"1\"},"
	  "\"items\":[{\"line\":\"1\"}]}", "invalid_field", "items[0].line" },
	{ "{\"type\":\"fulfillment.rejected\",\"request_id\":\"" RID "\",\"reason\":[\"oos\"]}",
	  "invalid_field", "reason" },
	/* tracking is ignored for types other than shipped, whatever its shape */
	{ "{\"type\":\"fulfillment.accepted\",\"request_id\":\"" RID "\",\"tracking\":\"soon\"}", NULL, NULL },
	{ "{\"type\":\"fulfillment.delivered\",\"request_id\":\"" RID "\",\"tracking\":{\"carrier\":7}}", NULL, NULL },
};

static void test_parse_cases(void)
{
	for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
		const struct parse_case *pc = &parse_cases[i];
		struct lifecycle_callback cb;
		struct order_error err = { 0 };
		int rc = lifecycle_parse_callback(pc->body, strlen(pc->body), &cb, &err);
		if (!pc->code) {
			if (rc != 0)
				printf("case %zu: refused: %s %s %s\n", i, err.code, err.field, err.message);
			CU_ASSERT_EQUAL(rc, 0);
			if (rc == 0)
				lifecycle_callback_free(&cb);
			continue;
		}
		if (rc == 0 || strcmp(err.code, pc->code) != 0 || strcmp(err.field, pc->field) != 0)
			printf("case %zu: want %s %s, got rc=%d %s %s\n", i, pc->code, pc->field, rc,
			       rc ? err.code : "", rc ? err.field : "");
		CU_ASSERT_EQUAL(rc, -1);
		if (rc == -1) {
			CU_ASSERT_STRING_EQUAL(err.code, pc->code);
			CU_ASSERT_STRING_EQUAL(err.field, pc->field);
			CU_ASSERT(err.message[0] != '\0');
		}
	}
}

static void test_parse_values(void)
{
	const char *body = "{\"type\":\"fulfillment.shipped\",\"request_id\":\"0F8FAD5B-D9CB-469F-A165-70867728950E\","
	                   "\"occurred_at\":\"2026-11-23T08:00:00+01:00\","
	                   "\"tracking\":{\"carrier\":\"DHL\",\"number\":\"JD01\",\"url\":\"https://t.example/JD01\"},"
	                   "\"items\":[{\"line\":3},{\"line\":1}],\"extra\":true}";
	struct lifecycle_callback cb;
	struct order_error err;
	CU_ASSERT_FATAL(lifecycle_parse_callback(body, strlen(body), &cb, &err) == 0);
	CU_ASSERT_EQUAL(cb.event, LIFECYCLE_EV_SHIPPED);
	CU_ASSERT_STRING_EQUAL(cb.request_id, RID); /* lower-cased */
	CU_ASSERT_STRING_EQUAL(cb.occurred_at, "2026-11-23T08:00:00+01:00");
	CU_ASSERT_STRING_EQUAL(cb.carrier, "DHL");
	CU_ASSERT_STRING_EQUAL(cb.tracking_number, "JD01");
	CU_ASSERT_STRING_EQUAL(cb.tracking_url, "https://t.example/JD01");
	CU_ASSERT_PTR_NULL(cb.reason);
	CU_ASSERT_EQUAL(cb.nitems, 2);
	CU_ASSERT_EQUAL(cb.items[0], 3);
	CU_ASSERT_EQUAL(cb.items[1], 1);
	lifecycle_callback_free(&cb);
	CU_ASSERT_PTR_NULL(cb.items);
}

/* Jansson quotes the bytes it stopped at; the message goes into a JSON
 * reply and the log, so it must stay printable ASCII whatever they were. */
/* A later event must not change the tracking a shipment recorded: only a
 * shipment's tracking is read (docs/callbacks.md: "Ignored for other types"). */
static void test_tracking_only_for_shipped(void)
{
	static const char *const types[] = { "accepted", "rejected", "delivered", "cancelled" };
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		char body[400];
		snprintf(body, sizeof body, "{\"type\":\"fulfillment.%s\",\"request_id\":\"" RID "\","
		         "\"tracking\":{\"carrier\":\"DHL\",\"number\":\"JD01\",\"url\":\"https://t.example/JD01\"}}",
		         types[i]);
		struct lifecycle_callback cb;
		struct order_error err;
		CU_ASSERT_FATAL(lifecycle_parse_callback(body, strlen(body), &cb, &err) == 0);
		CU_ASSERT_PTR_NULL(cb.carrier);
		CU_ASSERT_PTR_NULL(cb.tracking_number);
		CU_ASSERT_PTR_NULL(cb.tracking_url);
		lifecycle_callback_free(&cb);
	}
}

static void test_parse_error_message_printable(void)
{
	static const char *const bodies[] = {
		"{\"type\":\x01\"fulfillment.accepted\"}",
		"{\"type\":tru\xff}",
		"{\"type\":1\xc3\xa9}",
		"{\"type\":\"a\x1f\"}",
	};
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		struct lifecycle_callback cb;
		struct order_error err;
		CU_ASSERT_FATAL(lifecycle_parse_callback(bodies[i], strlen(bodies[i]), &cb, &err) == -1);
		CU_ASSERT_STRING_EQUAL(err.code, "invalid_json");
		CU_ASSERT(err.message[0] != '\0');
		for (const char *c = err.message; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) {
				printf("body %zu: byte 0x%02x in \"%s\"\n", i, (unsigned char)*c, err.message);
				CU_FAIL("non-printable byte in the message");
				break;
			}
	}
}

static void test_check_items(void)
{
	static const int open[] = { 1, 2, 4 };
	size_t left = 99, bad = 99;
	CU_ASSERT_EQUAL(lifecycle_check_items(open, 3, (const int[]){ 2 }, 1, &left, &bad), 0);
	CU_ASSERT_EQUAL(left, 2);
	CU_ASSERT_EQUAL(lifecycle_check_items(open, 3, (const int[]){ 4, 1, 2 }, 3, &left, &bad), 0);
	CU_ASSERT_EQUAL(left, 0);
	/* the same line twice in one parcel is still that line */
	CU_ASSERT_EQUAL(lifecycle_check_items(open, 3, (const int[]){ 1, 1 }, 2, &left, &bad), 0);
	CU_ASSERT_EQUAL(left, 2);
	CU_ASSERT_EQUAL(lifecycle_check_items(open, 3, (const int[]){ 2, 3, 5 }, 3, &left, &bad), -1);
	CU_ASSERT_EQUAL(bad, 1);
	CU_ASSERT_EQUAL(lifecycle_check_items(NULL, 0, (const int[]){ 1 }, 1, &left, &bad), -1);
	CU_ASSERT_EQUAL(bad, 0);
}

static void test_decide(void)
{
	static const int open[] = { 1, 2 };
	struct lifecycle_callback cb = { .event = LIFECYCLE_EV_SHIPPED };
	struct lifecycle_decision d;
	struct lifecycle_request rq = { LIFECYCLE_ACCEPTED, 0, open, 2 };

	lifecycle_decide(&rq, &cb, &d); /* a shipment of every line */
	CU_ASSERT_EQUAL(d.result, LIFECYCLE_APPLY);
	CU_ASSERT_EQUAL(d.to, LIFECYCLE_SHIPPED);

	int one[] = { 2 };
	cb.items = one;
	cb.nitems = 1;
	lifecycle_decide(&rq, &cb, &d); /* one parcel of two: stays accepted */
	CU_ASSERT_EQUAL(d.result, LIFECYCLE_APPLY);
	CU_ASSERT_EQUAL(d.to, LIFECYCLE_ACCEPTED);

	int wrong[] = { 2, 7 };
	cb.items = wrong;
	cb.nitems = 2;
	lifecycle_decide(&rq, &cb, &d);
	CU_ASSERT_EQUAL(d.result, LIFECYCLE_BAD_ITEM);
	CU_ASSERT_EQUAL(d.bad_item, 1);
	CU_ASSERT_EQUAL(d.to, LIFECYCLE_ACCEPTED);

	rq.seen = 1; /* the same delivery again: a repeat, whatever it says */
	lifecycle_decide(&rq, &cb, &d);
	CU_ASSERT_EQUAL(d.result, LIFECYCLE_REPEAT);

	struct lifecycle_callback del = { .event = LIFECYCLE_EV_DELIVERED };
	struct lifecycle_request sent = { LIFECYCLE_SENT, 0, open, 2 };
	lifecycle_decide(&sent, &del, &d);
	CU_ASSERT_EQUAL(d.result, LIFECYCLE_ILLEGAL);
	CU_ASSERT_EQUAL(d.to, LIFECYCLE_SENT);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "every state x event pair matches the documented table", test_every_pair },
		{ "state and event names round-trip", test_names_round_trip },
		{ "out-of-range input is illegal", test_out_of_range },
		{ "callback bodies: table of accepted and refused cases", test_parse_cases },
		{ "callback body values", test_parse_values },
		{ "tracking is read for fulfillment.shipped only", test_tracking_only_for_shipped },
		{ "invalid JSON: the message is printable ASCII", test_parse_error_message_printable },
		{ "a parcel's items against the unshipped lines", test_check_items },
		{ "the decision: repeat, illegal, partial shipment, bad item", test_decide },
		{ NULL, NULL },
	};
	return harness_main("lifecycle", NULL, NULL, tests);
}

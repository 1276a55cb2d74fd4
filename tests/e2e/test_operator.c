/* End-to-end tests of what operators do when orders get stuck: `outbox
 * list|retry`, `order show|list|reroute` and reporting.stranded_orders,
 * the real dropshipctl against a database that holds this story (written
 * by SQL: no dropshipd runs, so nothing moves unless a test moves it):
 *
 *   E-1 shop,  5 h ago  line 1 MUG routed to acme by request R1, whose
 *                       message M1 failed (connection refused); line 2 TEE
 *                       unroutable out_of_stock
 *   E-2 shop,  4 h ago  line 1 MUG re-routed from acme (R2, message M2
 *                       failed with a 404) to bolt (R3, message M3 delivered)
 *   E-3 shop2, 3 h ago  line 1 GONE unroutable no_offer; the store's
 *                       order.needs_attention M4 failed
 *   E-4 shop,  2 h ago  line 1 MUG routed to acme (R4), message M5 pending,
 *                       retried in 5 minutes after a 503
 *   E-5 shop2, now      cancelled before any line was routed
 * (and E-6, added by the test of a failure not handled yet)
 *
 * M1..M5 are outbox ids 1..5. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <jansson.h>

#include "support/ctl.h"
#include "support/harness.h"
#include "support/stranded.h"
#include "support/testdb.h"
#include "support/wait.h"

#define KEY "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define R(n) "00000000-0000-4000-8000-00000000000" #n

static char conninfo[512];
static PGconn *db;

static const char story_sql[] =
	"INSERT INTO stores (code, secrets, callback_url) VALUES"
	" ('shop', '{" KEY "}', 'https://shop.example/hooks'), ('shop2', '{" KEY "}', NULL);"
	"INSERT INTO suppliers (code, endpoint, secrets) VALUES"
	" ('acme', 'https://acme.example/orders', '{" KEY "}'),"
	" ('bolt', 'https://bolt.example/orders', '{" KEY "}');"
	"INSERT INTO orders (store_id, external_id, status, raw, created_at, updated_at)"
	" SELECT s.id, e.ext, e.status, '{}', now() - e.age, now() - e.age"
	" FROM (VALUES (1, 'shop', 'E-1', 'partially_routed', interval '5 hours'),"
	"              (2, 'shop', 'E-2', 'routed', interval '4 hours'),"
	"              (3, 'shop2', 'E-3', 'needs_attention', interval '3 hours'),"
	"              (4, 'shop', 'E-4', 'routed', interval '2 hours'),"
	"              (5, 'shop2', 'E-5', 'cancelled', interval '0')) e(n, store, ext, status, age)"
	" JOIN stores s ON s.code = e.store ORDER BY e.n;"
	"INSERT INTO fulfillment_requests (id, store_id, order_id, supplier_id, status, reason)"
	" SELECT r.id::uuid, o.store_id, o.id, sp.id, r.status, r.reason"
	" FROM (VALUES ('" R(1) "', 'E-1', 'acme', 'failed', 'delivery_failed'),"
	"              ('" R(2) "', 'E-2', 'acme', 'failed', 'delivery_failed'),"
	"              ('" R(3) "', 'E-2', 'bolt', 'sent', NULL),"
	"              ('" R(4) "', 'E-4', 'acme', 'pending', NULL)) r(id, ext, sup, status, reason)"
	" JOIN orders o ON o.external_id = r.ext JOIN suppliers sp ON sp.code = r.sup;"
	"INSERT INTO order_lines (store_id, order_id, line_no, sku, quantity, status, reason, supplier_id,"
	"  request_id)"
	" SELECT o.store_id, o.id, l.no, l.sku, 1, l.status, l.reason, sp.id, l.req::uuid"
	" FROM (VALUES ('E-1', 1, 'MUG', 'routed', NULL, 'acme', '" R(1) "'),"
	"              ('E-1', 2, 'TEE', 'unroutable', 'out_of_stock', NULL, NULL),"
	"              ('E-2', 1, 'MUG', 'routed', NULL, 'bolt', '" R(3) "'),"
	"              ('E-3', 1, 'GONE', 'unroutable', 'no_offer', NULL, NULL),"
	"              ('E-4', 1, 'MUG', 'routed', NULL, 'acme', '" R(4) "'))"
	"   l(ext, no, sku, status, reason, sup, req)"
	" JOIN orders o ON o.external_id = l.ext LEFT JOIN suppliers sp ON sp.code = l.sup;"
	"INSERT INTO outbox (kind, request_id, supplier_id, store_id, idempotency_key, payload, state,"
	"  attempts, next_attempt_at, last_status, last_error, last_response, created_at, delivered_at,"
	"  lease_token, lease_expires_at)"
	" SELECT m.kind, m.req::uuid, sp.id, st.id, m.key, '{}', m.state, m.attempts,"
	"  now() + m.next, m.status, m.error, m.response, now() - m.age,"
	"  CASE WHEN m.state = 'delivered' THEN now() - m.age END,"
	"  CASE WHEN m.n = 4 THEN gen_random_uuid() END, CASE WHEN m.n = 4 THEN now() END"
	" FROM (VALUES"
	"  (1, 'fulfillment.requested', '" R(1) "', 'acme', 'shop', '" R(1) "', 'failed', 8,"
	"   interval '0', NULL::int, 'connect: connection refused', NULL, interval '5 hours'),"
	"  (2, 'fulfillment.requested', '" R(2) "', 'acme', 'shop', '" R(2) "', 'failed', 1,"
	"   interval '0', 404, NULL, 'not found', interval '4 hours'),"
	"  (3, 'fulfillment.requested', '" R(3) "', 'bolt', 'shop', '" R(3) "', 'delivered', 1,"
	"   interval '0', 200, NULL, 'ok', interval '4 hours'),"
	"  (4, 'order.needs_attention', NULL, NULL, 'shop2', 'order-3.needs_attention', 'failed', 1,"
	"   interval '0', NULL, 'no callback_url', NULL, interval '3 hours'),"
	"  (5, 'fulfillment.requested', '" R(4) "', 'acme', 'shop', '" R(4) "', 'pending', 2,"
	"   interval '5 minutes', 503, NULL, 'busy', interval '2 hours'))"
	"   m(n, kind, req, sup, store, key, state, attempts, next, status, error, response, age)"
	" LEFT JOIN suppliers sp ON sp.code = m.sup JOIN stores st ON st.code = m.store ORDER BY m.n;";

static int has(const char *s, const char *needle)
{
	return s && strstr(s, needle) != NULL;
}

static int suite_init(void)
{
	if (testdb_create("dropship_operator", conninfo, sizeof conninfo) < 0 ||
	    ctl_rc(conninfo, "migrate", NULL) != 0 || !(db = testdb_connect(conninfo)))
		return -1;
	PGresult *res = PQexec(db, story_sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "story: %s", PQerrorMessage(db));
	PQclear(res);
	return ok ? 0 : -1;
}

static int suite_cleanup(void)
{
	PQfinish(db);
	return 0;
}

static char *value(const char *sql)
{
	char *v = testdb_value(db, sql, 0, NULL);
	return v ? v : strdup("(null)");
}

static void check_value(const char *sql, const char *want)
{
	char *got = value(sql);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "\n%s\nwant: %s\ngot:  %s\n", sql, want, got);
	CU_ASSERT_STRING_EQUAL(got, want);
	free(got);
}

/* The first column of every data line of a table (after the header), joined by ' '. */
static void first_column(const char *out, char *buf, size_t cap)
{
	size_t n = 0;
	buf[0] = '\0';
	const char *line = out ? strchr(out, '\n') : NULL;
	while (line && line[1]) {
		line++;
		size_t w = strspn(line, " ");
		size_t len = strcspn(line + w, " \n");
		n += (size_t)snprintf(buf + n, cap - n, "%s%.*s", n ? " " : "", (int)len, line + w);
		line = strchr(line, '\n');
	}
}

/* Runs a listing and checks the first column of its rows. */
static void check_listing(const char *want, const char *const *args)
{
	char got[256];
	struct ctl_run r = ctl_argv(conninfo, NULL, args);
	CU_ASSERT_EQUAL(r.rc, 0);
	first_column(r.out, got, sizeof got);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "\nwant rows: %s\ngot rows:  %s\n", want, got);
	CU_ASSERT_STRING_EQUAL(got, want);
	ctl_run_free(&r);
}

/* Runs dropshipctl with args (NULL-ended): its exit status must be rc, and
 * needle must be in its stdout (rc 0) or stderr. */
static void expect_argv(int rc, const char *needle, const char *const *args)
{
	struct ctl_run r = ctl_argv(conninfo, NULL, args);
	const char *text = rc == 0 ? r.out : r.err;
	CU_ASSERT_EQUAL(r.rc, rc);
	CU_ASSERT(has(text, needle));
	if (!has(text, needle))
		fprintf(stderr, "\nwant: %s\n", needle);
	ctl_run_free(&r);
}

#define EXPECT(rc, needle, ...) expect_argv(rc, needle, (const char *const[]){ __VA_ARGS__, NULL })
#define LISTING(want, ...) check_listing(want, (const char *const[]){ __VA_ARGS__, NULL })

/* What dropshipctl printed for args (which must succeed), read as JSON; NULL if not. */
static json_t *json_run(const char *const *args)
{
	struct ctl_run r = ctl_argv(conninfo, NULL, args);
	CU_ASSERT_EQUAL(r.rc, 0);
	json_t *doc = r.out ? json_loads(r.out, 0, NULL) : NULL;
	CU_ASSERT_PTR_NOT_NULL(doc);
	ctl_run_free(&r);
	return doc;
}

#define JSON_OF(...) json_run((const char *const[]){ __VA_ARGS__, NULL })

static void check_member(const json_t *o, const char *key, const char *want)
{
	const char *got = json_string_value(json_object_get(o, key));
	CU_ASSERT_STRING_EQUAL(got ? got : "(not a string)", want);
}

/* First, while the story is as written. */
static void test_stranded_orders(void)
{
	/* E-2's failed request lost its line to bolt: E-2 is not stranded. */
	PGresult *res = PQexec(db, "SELECT external_order_id, store, status, reasons, unroutable_lines,"
	                           " failed_requests, age_hours BETWEEN 2.9 AND 5.1"
	                           " FROM reporting.stranded_orders");
	CU_ASSERT_EQUAL_FATAL(PQresultStatus(res), PGRES_TUPLES_OK);
	CU_ASSERT_EQUAL_FATAL(PQntuples(res), 2);
	static const char *const want[2][7] = {
		{ "E-1", "shop", "partially_routed", "delivery_failed, out_of_stock", "1", "1", "t" },
		{ "E-3", "shop2", "needs_attention", "no_offer", "1", "0", "t" },
	};
	for (int r = 0; r < 2; r++)
		for (int c = 0; c < 7; c++)
			CU_ASSERT_STRING_EQUAL(PQgetvalue(res, r, c), want[r][c]);
	PQclear(res);

	/* As every report: through dropshipctl, and for the reporting role. */
	struct ctl_run r = ctl(conninfo, "report", "stranded_orders", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "order_id  store  external_order_id  status"));
	CU_ASSERT(has(r.out, "delivery_failed, out_of_stock"));
	CU_ASSERT(has(r.out, "(2 rows)"));
	ctl_run_free(&r);
	r = ctl(conninfo, "report", NULL);
	CU_ASSERT(has(r.out, "stranded_orders       orders with a line no supplier took"));
	ctl_run_free(&r);
	CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "SET ROLE dropship_reporting", 0, NULL), 0);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM reporting.stranded_orders", 0, NULL), 2);
	CU_ASSERT_EQUAL(testdb_exec(db, "RESET ROLE", 0, NULL), 0);
}

static void test_outbox_list(void)
{
	struct ctl_run r = ctl(conninfo, "outbox", "list", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "ID  KIND                   TARGET       REQUEST_ID"
	                     "                            STATE      ATTEMPTS  NEXT_ATTEMPT  LAST"));
	/* Newest first; a store notification's target is the store. */
	CU_ASSERT(has(r.out, "\n 5  fulfillment.requested  acme         " R(4) "  pending           2  in "));
	CU_ASSERT(has(r.out, "  in 5m ") || has(r.out, "  in 4m "));
	CU_ASSERT(has(r.out, "HTTP 503: busy"));
	CU_ASSERT(has(r.out, "\n 4  order.needs_attention  store:shop2                                        failed"
	                     "            1                no callback_url"));
	CU_ASSERT(has(r.out, "HTTP 404: not found"));
	CU_ASSERT(has(r.out, "connect: connection refused"));
	CU_ASSERT(has(r.out, "  5h0m\n"));
	ctl_run_free(&r);
	LISTING("5 4 3 2 1", "outbox", "list");
	LISTING("4 2 1", "outbox", "list", "--failed");
	LISTING("2 1", "outbox", "list", "--failed", "--supplier", "acme");
	LISTING("4", "outbox", "list", "--store=shop2");
	LISTING("5 3 2 1", "outbox", "list", "--store", "shop");
	LISTING("5 4", "outbox", "list", "--since", "3h30m");
	LISTING("5 4", "outbox", "list", "--limit", "2");
	char *since = value("SELECT to_char((now() - interval '210 minutes') AT TIME ZONE 'UTC',"
	                    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");
	LISTING("5 4", "outbox", "list", "--since", since);
	free(since);

	json_t *doc = JSON_OF("outbox", "list", "--failed", "--store", "shop", "--json");
	CU_ASSERT_FATAL(json_is_array(doc) && json_array_size(doc) == 2);
	json_t *m = json_array_get(doc, 1);
	check_member(m, "id", "1");
	check_member(m, "kind", "fulfillment.requested");
	check_member(m, "target", "acme");
	check_member(m, "request_id", R(1));
	check_member(m, "state", "failed");
	check_member(m, "last_error", "connect: connection refused");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(m, "attempts")), 8);
	CU_ASSERT(json_is_null(json_object_get(m, "last_status")));
	CU_ASSERT(json_is_null(json_object_get(m, "next_attempt_at")));
	CU_ASSERT(json_integer_value(json_object_get(m, "age_seconds")) >= 5 * 3600);
	CU_ASSERT(has(json_string_value(json_object_get(m, "created_at")), "+00:00"));
	CU_ASSERT_PTR_NULL(json_object_get(m, "_last"));
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_array_get(doc, 0), "last_status")), 404);
	json_decref(doc);
	EXPECT(0, "(no messages)", "outbox", "list", "--store", "shop2", "--failed", "--supplier", "acme");

	EXPECT(1, "outbox list: --supplier: no supplier 'nosuch'", "outbox", "list", "--supplier", "nosuch");
	EXPECT(2, "--since must be a duration", "outbox", "list", "--since", "yesterday");
	EXPECT(2, "--limit", "outbox", "list", "--limit", "0");
	CU_ASSERT_EQUAL(ctl_rc(conninfo, "outbox", "list", "7", NULL), 2);
	CU_ASSERT_EQUAL(ctl_rc(conninfo, "outbox", "list", "--supplier", "bad code", NULL), 2);
}

static bool notified(void *arg)
{
	PQconsumeInput(db);
	PGnotify *n = PQnotifies(db);
	bool got = n && strcmp(n->relname, (const char *)arg) == 0;
	PQfreemem(n);
	return got;
}

#define OUTBOX_ROW(id)                                                                        \
	"SELECT concat_ws(' ', state, attempts, next_attempt_at <= now(), lease_token IS NULL,"   \
	" coalesce(last_status::text, '-'), coalesce(last_error, '-')) FROM outbox WHERE id = " #id

static void test_outbox_retry_one(void)
{
	CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "LISTEN dropship_outbox", 0, NULL), 0);
	/* A failed store notification goes again: a fresh budget, its last outcome kept. */
	struct ctl_run r = ctl(conninfo, "outbox", "retry", "4", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "message 4 (order.needs_attention to store:shop2) re-queued: pending, attempts 0"));
	ctl_run_free(&r);
	check_value(OUTBOX_ROW(4), "pending 0 t t - no callback_url");
	CU_ASSERT(wait_until(notified, "dropship_outbox", 5000, 50));

	/* R2's line went to bolt: sending R2 again would ship it twice. */
	r = ctl(conninfo, "outbox", "retry", "2", NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.err, "message 2 (fulfillment.requested to acme, request " R(2) ") not re-queued: "
	                     "its request no longer has a routed line"));
	ctl_run_free(&r);
	check_value(OUTBOX_ROW(2), "failed 1 t t 404 -");
	check_value("SELECT status FROM fulfillment_requests WHERE id = '" R(2) "'", "failed");

	EXPECT(1, "message 3 is delivered, not failed", "outbox", "retry", "3");
	EXPECT(1, "no outbox message 99", "outbox", "retry", "99");
	CU_ASSERT(!wait_until(notified, "dropship_outbox", 300, 50));

	static const char *const bad[][6] = {
		{ "outbox", "retry", NULL },
		{ "outbox", "retry", "x1", NULL },
		{ "outbox", "retry", "1", "--failed", NULL },
		{ "outbox", "retry", "1", "--supplier", "acme", NULL },
		{ "outbox", "retry", "1", "2", NULL },
		{ "outbox", "retry", "--failed", "--since", "1h", NULL },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		r = ctl_argv(conninfo, NULL, bad[i]);
		CU_ASSERT_EQUAL(r.rc, 2);
		ctl_run_free(&r);
	}
}

static void test_outbox_retry_failed(void)
{
	/* M1 (its request still owns E-1's line) goes; M2 is refused. */
	struct ctl_run r = ctl(conninfo, "outbox", "retry", "--failed", "--supplier", "acme", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "message 1 (fulfillment.requested to acme) re-queued"));
	CU_ASSERT(has(r.out, "message 2 (fulfillment.requested to acme, request " R(2) ") not re-queued"));
	CU_ASSERT(has(r.out, "re-queued 1 message, refused 1 (its request no longer has a routed line"));
	ctl_run_free(&r);
	check_value(OUTBOX_ROW(1), "pending 0 t t - connect: connection refused");
	/* Its request waits for delivery again, so the supplier's callbacks apply. */
	check_value("SELECT status || ' ' || coalesce(reason, '-') FROM fulfillment_requests"
	            " WHERE id = '" R(1) "'", "pending -");
	CU_ASSERT(wait_until(notified, "dropship_outbox", 5000, 50));
	/* No longer stranded by a failed delivery. */
	check_value("SELECT reasons || ' ' || failed_requests FROM reporting.stranded_orders"
	            " WHERE external_order_id = 'E-1'", "out_of_stock 0");

	EXPECT(0, "re-queued 0 messages, refused 1", "outbox", "retry", "--failed");
	EXPECT(0, "no failed messages to re-queue", "outbox", "retry", "--failed", "--store", "shop2");
	EXPECT(1, "no store 'nosuch'", "outbox", "retry", "--failed", "--store", "nosuch");
	LISTING("2", "outbox", "list", "--failed");
}

static void test_order_show_by_external(void)
{
	struct ctl_run r = ctl(conninfo, "order", "show", "--store", "shop2", "--external", "E-3", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "store shop2  external id E-3"));
	CU_ASSERT(has(r.out, "no_offer"));
	ctl_run_free(&r);
	json_t *doc = JSON_OF("order", "show", "--external=E-1", "--store=shop", "--json");
	check_member(doc, "external_id", "E-1");
	CU_ASSERT_EQUAL(json_array_size(json_object_get(doc, "lines")), 2);
	json_decref(doc);

	/* External ids are the store's: E-1 is not shop2's. */
	EXPECT(1, "order show: no order with external id 'E-1' in store 'shop2'",
	       "order", "show", "--store", "shop2", "--external", "E-1");
	EXPECT(1, "no store 'nosuch'", "order", "show", "--store", "nosuch", "--external", "E-1");
	EXPECT(2, "--external needs --store CODE", "order", "show", "--external", "E-1");
	EXPECT(2, "--store needs --external ID", "order", "show", "--store", "shop");
	EXPECT(2, "not both", "order", "show", "1", "--store", "shop", "--external", "E-1");
	CU_ASSERT_EQUAL(ctl_rc(conninfo, "order", "show", NULL), 2);
}

static void test_order_list(void)
{
	struct ctl_run r = ctl(conninfo, "order", "list", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "ID  STORE  EXTERNAL_ID  STATUS            LINES  CREATED               UPDATED\n"));
	CU_ASSERT(has(r.out, "\n 1  shop   E-1          partially_routed      2  20"));
	ctl_run_free(&r);
	/* Newest first, by id: E-5 is order 5. */
	LISTING("5 4 3 2 1", "order", "list");
	LISTING("5 3", "order", "list", "--store", "shop2");
	LISTING("4 2", "order", "list", "--status", "routed");
	LISTING("5 4", "order", "list", "--since", "150m");
	LISTING("5", "order", "list", "--limit=1");
	json_t *doc = JSON_OF("order", "list", "--store", "shop2", "--json");
	CU_ASSERT_FATAL(json_is_array(doc) && json_array_size(doc) == 2);
	json_t *o = json_array_get(doc, 1);
	check_member(o, "order_id", "3");
	check_member(o, "store", "shop2");
	check_member(o, "external_id", "E-3");
	check_member(o, "status", "needs_attention");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "lines")), 1);
	CU_ASSERT(json_is_string(json_object_get(o, "created_at")));
	json_decref(doc);
	EXPECT(0, "(no orders)", "order", "list", "--status", "delivered");

	EXPECT(2, "--status must be one of", "order", "list", "--status", "lost");
	EXPECT(1, "no store 'nosuch'", "order", "list", "--store", "nosuch");
	CU_ASSERT_EQUAL(ctl_rc(conninfo, "order", "list", "--limit", "10001", NULL), 2);
	CU_ASSERT_EQUAL(ctl_rc(conninfo, "order", "list", "E-1", NULL), 2);
}

/* Nothing re-plans here: the request is left queued and the command says why. */
static void test_order_reroute_times_out(void)
{
	CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "LISTEN dropship_replan", 0, NULL), 0);
	double start = wait_now_ms();
	struct ctl_run r = ctl(conninfo, "order", "reroute", "--store", "shop", "--external", "E-4", NULL);
	double took = wait_now_ms() - start;
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(has(r.err, "order reroute: order 4 was not re-planned within 10 s: no dropshipd re-planned it; "
	                     "is dropshipd running?"));
	ctl_run_free(&r);
	CU_ASSERT(took >= 9500 && took < 20000);
	CU_ASSERT(wait_until(notified, "dropship_replan", 1000, 50));
	check_value("SELECT store_id || '/' || order_id FROM replan_orders", "1/4");
	CU_ASSERT_EQUAL(testdb_exec(db, "UNLISTEN dropship_replan", 0, NULL), 0);
	CU_ASSERT_EQUAL(testdb_exec(db, "DELETE FROM replan_orders", 0, NULL), 0);
}

/* Stands in for dropshipd: re-plans E-1's waiting line once asked (a new
 * request to bolt, R5, with its message), then deletes the request to
 * re-plan, as dropshipd does. */
static void *replanner(void *arg)
{
	(void)arg;
	PGconn *conn = testdb_connect(conninfo);
	for (int i = 0; conn && i < 200; i++) {
		wait_ms(50);
		if (testdb_count(conn, "SELECT count(*) FROM replan_orders", 0, NULL) > 0) {
			testdb_exec(conn, "BEGIN", 0, NULL);
			testdb_exec(conn, "INSERT INTO fulfillment_requests (id, store_id, order_id, supplier_id)"
			                  " SELECT '" R(5) "', q.store_id, q.order_id, s.id FROM replan_orders q,"
			                  " suppliers s WHERE s.code = 'bolt'", 0, NULL);
			testdb_exec(conn, "INSERT INTO outbox (kind, request_id, supplier_id, store_id, idempotency_key,"
			                  " payload) SELECT 'fulfillment.requested', r.id, r.supplier_id, r.store_id,"
			                  " r.id::text, '{}' FROM fulfillment_requests r WHERE r.id = '" R(5) "'", 0, NULL);
			testdb_exec(conn, "UPDATE order_lines l SET status = 'routed', reason = NULL,"
			                  " supplier_id = (SELECT id FROM suppliers WHERE code = 'bolt'),"
			                  " request_id = '" R(5) "'"
			                  " FROM replan_orders q WHERE l.store_id = q.store_id"
			                  " AND l.order_id = q.order_id AND l.status = 'unroutable'", 0, NULL);
			testdb_exec(conn, "UPDATE orders o SET status = 'routed' FROM replan_orders q"
			                  " WHERE o.store_id = q.store_id AND o.id = q.order_id", 0, NULL);
			testdb_exec(conn, "DELETE FROM replan_orders", 0, NULL);
			testdb_exec(conn, "COMMIT", 0, NULL);
			break;
		}
	}
	PQfinish(conn);
	return NULL;
}

static void test_order_reroute(void)
{
	pthread_t t;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, replanner, NULL), 0);
	struct ctl_run r = ctl(conninfo, "order", "reroute", "1", NULL);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "order 1 re-planned; now routed\n"));
	CU_ASSERT(has(r.out, "  LINE  SKU  QTY  STATUS  REASON  SUPPLIER  REQUEST_ID\n"));
	CU_ASSERT(has(r.out, "     2  TEE    1  routed          bolt      " R(5) "\n"));
	ctl_run_free(&r);
	check_value("SELECT count(*) FROM replan_orders", "0");

	/* Nothing left to route in a finished order; unknown orders; usage. */
	CU_ASSERT_EQUAL(testdb_exec(db, "UPDATE orders SET status = 'delivered' WHERE external_id = 'E-2'", 0,
	                            NULL), 0);
	EXPECT(1, "order 2 is delivered: nothing is left to route",
	       "order", "reroute", "--store", "shop", "--external", "E-2");
	EXPECT(1, "order reroute: no order 77", "order", "reroute", "77");
	CU_ASSERT_EQUAL(ctl_rc(conninfo, "order", "reroute", NULL), 2);
	CU_ASSERT_EQUAL(ctl_rc(conninfo, "order", "reroute", "E-1", NULL), 2);
	CU_ASSERT_EQUAL(ctl_rc(conninfo, "order", "reroute", "1", "--json", NULL), 2);
	check_value("SELECT count(*) FROM replan_orders", "0");
}

/* dropshipd's holding of a request while it handles its failure. */
static const char hold_sql[] =
	"SELECT count(*) FROM (SELECT id FROM fulfillment_requests WHERE id = '" R(6) "' FOR UPDATE) l";

static bool retry_waits(void *arg)
{
	(void)arg;
	return testdb_count(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
	                        " AND wait_event_type = 'Lock' AND query LIKE '%FOR NO KEY UPDATE%'", 0, NULL) == 1;
}

static void *retry_thread(void *arg)
{
	struct ctl_run *r = arg;
	*r = ctl(conninfo, "outbox", "retry", "--failed", "--supplier", "acme", NULL);
	return NULL;
}

/* E-6: its request R6 failed delivery a moment ago and dropshipd has yet
 * to route its line elsewhere (request_failures). The retry takes the
 * request first, waiting while dropshipd holds it, then withdraws the
 * failure with the message re-queued. */
static void test_outbox_retry_withdraws_a_pending_failure(void)
{
	CU_ASSERT_FATAL(testdb_exec(db,
	        "WITH o AS (INSERT INTO orders (store_id, external_id, status, raw)"
	        "   SELECT id, 'E-6', 'routed', '{}' FROM stores WHERE code = 'shop' RETURNING store_id, id),"
	        " r AS (INSERT INTO fulfillment_requests (id, store_id, order_id, supplier_id)"
	        "   SELECT '" R(6) "', o.store_id, o.id, s.id FROM o, suppliers s WHERE s.code = 'acme'"
	        "   RETURNING id, store_id, order_id, supplier_id),"
	        " l AS (INSERT INTO order_lines (store_id, order_id, line_no, sku, quantity, status, supplier_id,"
	        "   request_id) SELECT store_id, order_id, 1, 'MUG', 1, 'routed', supplier_id, id FROM r),"
	        " m AS (INSERT INTO outbox (kind, request_id, supplier_id, store_id, idempotency_key, payload, state,"
	        "   attempts, last_error) SELECT 'fulfillment.requested', id, supplier_id, store_id, id::text, '{}',"
	        "   'failed', 8, 'connect: connection refused' FROM r)"
	        " INSERT INTO request_failures (request_id, supplier_id, cause)"
	        " SELECT id, supplier_id, 'connect: connection refused' FROM r", 0, NULL) == 0);
	PGconn *dropshipd = testdb_connect(conninfo);
	CU_ASSERT_FATAL(dropshipd && testdb_exec(dropshipd, "BEGIN", 0, NULL) == 0);
	CU_ASSERT_FATAL(testdb_count(dropshipd, hold_sql, 0, NULL) == 1);
	pthread_t t;
	struct ctl_run r;
	CU_ASSERT_FATAL(pthread_create(&t, NULL, retry_thread, &r) == 0);
	CU_ASSERT(wait_until(retry_waits, NULL, 10000, 50));
	check_value("SELECT count(*) FROM request_failures", "1");
	CU_ASSERT(testdb_exec(dropshipd, "COMMIT", 0, NULL) == 0);
	PQfinish(dropshipd);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT(has(r.out, "(fulfillment.requested to acme) re-queued: pending, attempts 0"));
	ctl_run_free(&r);
	check_value("SELECT count(*) FROM request_failures", "0");
	check_value("SELECT state || ' ' || attempts FROM outbox WHERE request_id = '" R(6) "'", "pending 0");
	check_value("SELECT status FROM fulfillment_requests WHERE id = '" R(6) "'", "pending");
}

/* Last: whatever the tests above left behind is either on its way or
 * listed by reporting.stranded_orders. */
static void test_nothing_stranded_unseen(void)
{
	stranded_check(db);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "stranded_orders: unroutable lines and failed deliveries", test_stranded_orders },
		{ "outbox list: newest first, filters, --json", test_outbox_list },
		{ "outbox retry ID: re-queues, or says why not", test_outbox_retry_one },
		{ "outbox retry --failed: re-queues what may go again", test_outbox_retry_failed },
		{ "order show by the store's own id", test_order_show_by_external },
		{ "order list: newest first, filters, --json", test_order_list },
		{ "order reroute times out when nothing re-plans", test_order_reroute_times_out },
		{ "order reroute waits for the re-plan and shows the lines", test_order_reroute },
		{ "outbox retry withdraws a failure dropshipd has yet to handle, under its lock",
		  test_outbox_retry_withdraws_a_pending_failure },
		{ "no order is stuck where stranded_orders does not show it", test_nothing_stranded_unseen },
		{ NULL, NULL },
	};
	return harness_main("operator", suite_init, suite_cleanup, tests);
}

/* End to end: the reporting views, the reporting role, `dropshipctl report`
 * and `order show`, and GET /v1/admin/orders/{id}. Orders go in through the
 * HTTP API, are forwarded to the simulator (which only acknowledges) or to a
 * supplier it does not know (404: the delivery fails), and the test plays
 * the suppliers' callbacks. Only clocks are moved by SQL: requests are
 * backdated and orders put on one fixed day, so every hour, bucket and rate
 * in the views is known exactly.
 *
 * Suppliers: acme (SKU-A 10.00, SKU-C 5.00, ships within 48 h), bolt
 * (SKU-A 12.00, SKU-B 7.00, ships within 72 h), ghost (SKU-G 1.00, its
 * endpoint answers 404). Store policy: cheapest.
 *   R-1  SKU-A x2 @20    acme: accepted +2 h, shipped +30 h   (created -100 h)
 *   R-2  SKU-B x3 @15    bolt: sent, never answered           (created -100 h)
 *   R-3  SKU-A x1 @20    acme: accepted +4 h, shipped +80 h   (created -100 h)
 *   R-4  GONE x1 @5      no offer: needs_attention
 *   R-5  GONE x2 @5, SKU-C x1 @9.50: line 1 no offer, line 2 acme accepted +6 h (created -10 h)
 *   R-6  SKU-G x1 @3     ghost: delivery refused with 404, failed; the line is re-routed
 *                        like a rejection, no other supplier has SKU-G: needs_attention
 *   R-7  SKU-A x1 @20    acme rejects out_of_stock, re-routed to bolt (sent)
 * GONE is the SKU `GONE, "OLD"`: a comma and quotes for the CSV. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>
#include <jansson.h>

#include "support/ctl.h"
#include "support/harness.h"
#include "support/https.h"
#include "support/proc.h"
#include "support/shop.h"
#include "support/testdb.h"
#include "support/testsrv.h"
#include "support/wait.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define ACME_SECRET "whsec_c2Vjb25kLXNlY3JldC1mb3ItdGVzdHMtMTIzNA=="
#define BOLT_SECRET "whsec_dGhpcmQtc2VjcmV0LW5ldmVyLWNvbmZpZ3VyZWQhIQ=="
#define ADMIN_TOKEN "adm-7f3c9e1b2d4a6f80"
#define GONE "GONE, \"OLD\""

static char conninfo[512];
static PGconn *db;
static struct testsrv srv;
static struct testsrv sim;
static char cert[300];

/* Posts order ext with its n lines; 0 when accepted. */
static int post_order(const char *ext, const struct shop_line *lines, size_t n)
{
	char *body = shop_order_json(ext, "US", lines, n, false);
	struct https_resp r;
	int ok = shop_post(srv.port, "shop", SECRET, (int64_t)time(NULL), body, &r) == 0 && r.status == 202;
	if (!ok)
		fprintf(stderr, "order %s: %d %s\n", ext, r.status, r.body ? r.body : "");
	https_resp_free(&r);
	free(body);
	return ok ? 0 : -1;
}

/* A request looked for by request_in, and its id once found. */
struct request_wait {
	const char *v[3];   /* order's external id, supplier, status */
	char *id;
};

static bool request_found(void *arg)
{
	struct request_wait *w = arg;
	w->id = testdb_value(db, "SELECT r.id::text FROM fulfillment_requests r"
	                         " JOIN suppliers s ON s.id = r.supplier_id"
	                         " JOIN orders o ON o.store_id = r.store_id AND o.id = r.order_id"
	                         " WHERE o.external_id = $1 AND s.code = $2 AND r.status = $3", 3, w->v);
	return w->id != NULL;
}

/* The id of order ext's request to supplier once it is in status, else NULL. */
static char *request_in(const char *ext, const char *supplier, const char *status)
{
	struct request_wait w = { { ext, supplier, status }, NULL };
	if (!wait_until(request_found, &w, 15000, 100))
		fprintf(stderr, "no %s request of %s to %s\n", status, ext, supplier);
	return w.id;
}

/* Moves request id's creation hours_ago into the past, on a whole second. */
static int backdate(const char *id, const char *hours_ago)
{
	const char *v[] = { id, hours_ago };
	return testdb_exec(db, "UPDATE fulfillment_requests SET created_at = date_trunc('second', now())"
	                       " - $2::int * interval '1 hour' WHERE id = $1::uuid", 2, v);
}

/* Sends callback type for request id, occurring hours after its creation
 * (hours NULL: no occurred_at); extra is more JSON members or NULL. */
static int callback(const char *supplier, const char *secret, const char *id, const char *type,
                    const char *hours, const char *extra)
{
	char body[1024], path[128], when[64] = "";
	if (hours) {
		const char *v[] = { id, hours };
		char *t = testdb_value(db, "SELECT to_char((created_at + $2::int * interval '1 hour')"
		                           " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
		                           " FROM fulfillment_requests WHERE id = $1::uuid", 2, v);
		if (!t)
			return -1;
		snprintf(when, sizeof when, ",\"occurred_at\":\"%s\"", t);
		free(t);
	}
	snprintf(body, sizeof body, "{\"type\":\"fulfillment.%s\",\"request_id\":\"%s\"%s%s%s}", type, id, when,
	         extra ? "," : "", extra ? extra : "");
	snprintf(path, sizeof path, "/v1/suppliers/%s/callbacks", supplier);
	struct https_resp r;
	int ok = https_post_signed(srv.port, path, secret, NULL, (int64_t)time(NULL), body, &r) == 0 &&
	         r.status == 200;
	if (!ok)
		fprintf(stderr, "callback %s %s: %d %s\n", type, id, r.status, r.body ? r.body : "");
	https_resp_free(&r);
	return ok ? 0 : -1;
}

#define SHIPPED "\"tracking\":{\"carrier\":\"UPS\",\"number\":\"1Z999\"}"

/* Plays the story of the file's comment. Returns 0, or -1 at the first step that failed. */
static int populate(void)
{
	static const struct shop_line l1[] = { { "SKU-A", 2, "20.00", NULL } };
	static const struct shop_line l2[] = { { "SKU-B", 3, "15.00", NULL } };
	static const struct shop_line l3[] = { { "SKU-A", 1, "20.00", NULL } };
	static const struct shop_line l4[] = { { GONE, 1, "5.00", NULL } };
	static const struct shop_line l5[] = { { GONE, 2, "5.00", NULL }, { "SKU-C", 1, "9.50", NULL } };
	static const struct shop_line l6[] = { { "SKU-G", 1, "3.00", NULL } };
	if (post_order("R-1", l1, 1) < 0 || post_order("R-2", l2, 1) < 0 || post_order("R-3", l3, 1) < 0 ||
	    post_order("R-4", l4, 1) < 0 || post_order("R-5", l5, 2) < 0 || post_order("R-6", l6, 1) < 0)
		return -1;
	char *r1 = request_in("R-1", "acme", "sent"), *r2 = request_in("R-2", "bolt", "sent");
	char *r3 = request_in("R-3", "acme", "sent"), *r5 = request_in("R-5", "acme", "sent");
	char *r6 = request_in("R-6", "ghost", "failed");
	int rc = -1;
	if (!r1 || !r2 || !r3 || !r5 || !r6 ||
	    backdate(r1, "100") < 0 || backdate(r2, "100") < 0 || backdate(r3, "100") < 0 ||
	    backdate(r5, "10") < 0 ||
	    callback("acme", ACME_SECRET, r1, "accepted", "2", NULL) < 0 ||
	    callback("acme", ACME_SECRET, r1, "shipped", "30", SHIPPED) < 0 ||
	    callback("acme", ACME_SECRET, r3, "accepted", "4", NULL) < 0 ||
	    callback("acme", ACME_SECRET, r3, "shipped", "80", SHIPPED) < 0 ||
	    callback("acme", ACME_SECRET, r5, "accepted", "6", NULL) < 0)
		goto done;
	/* R-7 last: acme's rejection marks its SKU-A offer unavailable. */
	char *r7 = NULL, *r7b = NULL;
	static const struct shop_line l7[] = { { "SKU-A", 1, "20.00", NULL } };
	if (post_order("R-7", l7, 1) == 0 &&
	    (r7 = request_in("R-7", "acme", "sent")) &&
	    callback("acme", ACME_SECRET, r7, "rejected", NULL, "\"reason\":\"out_of_stock\"") == 0 &&
	    (r7b = request_in("R-7", "bolt", "sent")))
		rc = 0;
	free(r7);
	free(r7b);
	/* Deadlines only now: a sweep during the callbacks would have rejected
	 * the backdated requests. All orders on one fixed day for daily_orders. */
	if (rc == 0)
		rc = testdb_exec(db, "UPDATE suppliers SET ship_within = '48 hours' WHERE code = 'acme'", 0, NULL) |
		     testdb_exec(db, "UPDATE orders SET created_at = date_trunc('day', now() AT TIME ZONE 'UTC')"
		                     " AT TIME ZONE 'UTC' - interval '14 hours'", 0, NULL);
done:
	free(r1), free(r2), free(r3), free(r5), free(r6);
	return rc;
}

static int suite_init(void)
{
	const char *tls = getenv("DROPSHIP_TEST_TLS_DIR");
	char conf[800], port[16];
	snprintf(cert, sizeof cert, "%s/server.crt", tls ? tls : "/tmp");
	const char *sups[] = { "acme=" ACME_SECRET, "bolt=" BOLT_SECRET, NULL };
	if (testsrv_prepare_db("dropship_reporting", SECRET, conninfo, sizeof conninfo) < 0 ||
	    !(db = testdb_connect(conninfo)) || testsrv_start_sim(&sim, sups, NULL, 10000) < 0)
		return -1;
	snprintf(port, sizeof port, "%d", sim.port);
	const char *v[] = { port };
	if (testdb_exec(db,
	        "WITH s AS (INSERT INTO suppliers (code, endpoint, secrets, accept_within, ship_within)"
	        "   SELECT code, 'https://127.0.0.1:' || $1 || '/suppliers/' || code || '/fulfillments',"
	        "          ARRAY[secret], '365 days', ship"
	        "     FROM (VALUES ('acme', '" ACME_SECRET "', interval '365 days'),"
	        "                  ('bolt', '" BOLT_SECRET "', interval '72 hours'),"
	        "                  ('ghost', '" BOLT_SECRET "', interval '72 hours')) x(code, secret, ship)"
	        "   RETURNING id, code)"
	        " INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days)"
	        " SELECT s.id, o.sku, 'X-' || o.sku, o.cost, 100, 2 FROM s JOIN (VALUES"
	        "   ('acme', 'SKU-A', 10.00), ('acme', 'SKU-C', 5.00), ('bolt', 'SKU-A', 12.00),"
	        "   ('bolt', 'SKU-B', 7.00), ('ghost', 'SKU-G', 1.00)) o(code, sku, cost) ON o.code = s.code",
	        1, v) != 0)
		return -1;
	snprintf(conf, sizeof conf, "[dispatch]\nallow_private_endpoints = true\ntls_ca_file = %s\n"
	                            "[admin]\nlisten = 127.0.0.1:0\ntoken = " ADMIN_TOKEN "\n", cert);
	if (testsrv_start(&srv, conninfo, conf, 1) < 0)
		return -1;
	return populate();
}

static int suite_cleanup(void)
{
	int rc = srv.pid > 0 ? testsrv_stop(&srv, SIGTERM) : 0;
	testsrv_stop_sim(&sim, 5000);
	if (db)
		PQfinish(db);
	return rc == 0 ? 0 : -1;
}

/* The view's rows, columns joined by '|' and rows by '\n' (NULL as ""). */
static char *rows_of(const char *sql)
{
	PGresult *res = PQexec(db, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(db));
		PQclear(res);
		return strdup("(query failed)");
	}
	size_t cap = 8192, n = 0;
	char *out = calloc(1, cap);
	for (int r = 0; r < PQntuples(res); r++)
		for (int c = 0; c < PQnfields(res); c++)
			n += (size_t)snprintf(out + n, cap - n, "%s%s", PQgetvalue(res, r, c),
			                      c + 1 < PQnfields(res) ? "|" : "\n");
	PQclear(res);
	return out;
}

static void check_rows(const char *sql, const char *want)
{
	char *got = rows_of(sql);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "\n%s\nwant:\n%sgot:\n%s", sql, want, got);
	CU_ASSERT_STRING_EQUAL(got, want);
	free(got);
}

static void test_daily_orders(void)
{
	/* 8 lines, 12 units; revenue 40+45+20+5+19.50+3+20; cost at the landed
	 * unit cost of the chosen offer: 20+21+10+5+1+12 (R-7 now with bolt). */
	check_rows("SELECT day = (now() AT TIME ZONE 'UTC')::date - 1, store, currency, orders, lines, units,"
	           " revenue, cost, cancelled, needs_attention, unroutable_lines FROM reporting.daily_orders",
	           "t|shop|USD|7|8|12|152.50|68.00|0|2|3\n");
}

static void test_order_status_summary(void)
{
	check_rows("SELECT status, orders, pct FROM reporting.order_status_summary",
	           "routed|2|28.6\npartially_routed|1|14.3\nneeds_attention|2|28.6\nshipped|2|28.6\n");
}

static void test_supplier_performance(void)
{
	/* acme: 4 requests, 3 accepted after 2, 4, 6 h
	 * (median 4, p90 4 + 0.8 * 2), 1 rejected; shipped after 30 and 80 h
	 * (median 55, p90 30 + 0.9 * 50), one of them within 48 h.
	 * bolt: R-2 and R-7's second request, neither answered. ghost: R-6. */
	check_rows("SELECT supplier, requests, accepted, rejected, shipped, acceptance_rate, rejection_rate,"
	           " median_hours_to_accept, p90_hours_to_accept, median_hours_to_ship, p90_hours_to_ship,"
	           " on_time_rate FROM reporting.supplier_performance",
	           "acme|4|3|1|2|75.0|25.0|4.00|5.60|55.00|75.00|50.0\n"
	           "bolt|2|0|0|0|0.0|0.0|||||\n"
	           "ghost|1|0|0|0|0.0|0.0|||||\n");
}

static void test_unroutable_lines(void)
{
	/* R-6's line came back from ghost with nowhere else to go. */
	check_rows("SELECT sku, reason, lines, orders, units FROM reporting.unroutable_lines",
	           GONE "|no_offer|2|2|3\n"
	           "SKU-G|no_offer|1|1|1\n");
}

static void test_fulfillment_backlog(void)
{
	/* acme: R-5 accepted 10 h ago. bolt: R-7's new request just sent, and
	 * R-2 sent 100 h ago, past bolt's 72 h. */
	check_rows("SELECT supplier, age, requests, pending, sent, accepted, overdue"
	           " FROM reporting.fulfillment_backlog",
	           "acme|6-24h|1|0|0|1|0\n"
	           "bolt|< 1h|1|0|1|0|0\n"
	           "bolt|3-7d|1|0|1|0|1\n");
}

static void test_failed_deliveries(void)
{
	check_rows("SELECT kind, recipient, store, external_order_id, attempts, last_status,"
	           " request_id = (SELECT r.id FROM fulfillment_requests r JOIN orders o ON o.id = r.order_id"
	           "                WHERE o.external_id = 'R-6'), failed_at IS NOT NULL"
	           " FROM reporting.failed_deliveries",
	           "fulfillment.requested|ghost|shop|R-6|1|404|t|t\n");
	/* The simulator's own answer for a supplier it does not know. */
	check_rows("SELECT left(last_error, 9), last_error LIKE '%unknown_supplier%' FROM reporting.failed_deliveries",
	           "HTTP 404:|t\n");
}

static void test_routing_decisions(void)
{
	/* Cheapest first: bolt's SKU-A at 12.00 is the runner-up to acme's 10.00,
	 * 2.00 a unit more. R-7's second attempt has no runner-up: acme's offer
	 * became unavailable when it rejected. */
	check_rows("SELECT external_order_id, line_no, attempt, policy, supplier, unit_cost, runner_up,"
	           " runner_up_unit_cost, cost_difference, reason FROM reporting.routing_decisions"
	           " ORDER BY external_order_id, line_no, attempt",
	           "R-1|1|1|cheapest|acme|10.0000|bolt|12.0000|4.0000|\n"
	           "R-2|1|1|cheapest|bolt|7.0000||||\n"
	           "R-3|1|1|cheapest|acme|10.0000|bolt|12.0000|2.0000|\n"
	           "R-4|1|1|cheapest||||||no_offer\n"
	           "R-5|1|1|cheapest||||||no_offer\n"
	           "R-5|2|1|cheapest|acme|5.0000||||\n"
	           "R-6|1|1|cheapest|ghost|1.0000||||\n"
	           "R-6|1|2|cheapest||||||no_offer\n"
	           "R-7|1|1|cheapest|acme|10.0000|bolt|12.0000|2.0000|\n"
	           "R-7|1|2|cheapest|bolt|12.0000||||\n");
}

static const char *sqlstate_of(const char *sql)
{
	static char state[8];
	PGresult *res = PQexec(db, sql);
	const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	snprintf(state, sizeof state, "%s", s ? s : "00000");
	PQclear(res);
	return state;
}

static void test_reporting_role_reads_only_reports(void)
{
	CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "SET ROLE dropship_reporting", 0, NULL), 0);
	/* 42501: insufficient_privilege. */
	CU_ASSERT_STRING_EQUAL(sqlstate_of("SELECT secrets FROM stores"), "42501");
	CU_ASSERT_STRING_EQUAL(sqlstate_of("SELECT secrets FROM suppliers"), "42501");
	CU_ASSERT_STRING_EQUAL(sqlstate_of("SELECT raw FROM orders"), "42501");
	CU_ASSERT_STRING_EQUAL(sqlstate_of("SELECT payload FROM request_events"), "42501");
	CU_ASSERT_STRING_EQUAL(sqlstate_of("CREATE VIEW reporting.mine AS SELECT 1"), "42501");
	CU_ASSERT_STRING_EQUAL(sqlstate_of("SELECT * FROM fulfillment_requests"), "42501");
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM reporting.supplier_performance", 0, NULL), 3);
	CU_ASSERT_EQUAL(testdb_exec(db, "RESET ROLE", 0, NULL), 0);
	/* No view shows a secret or a raw payload column. */
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM information_schema.columns"
	                                 " WHERE table_schema = 'reporting'"
	                                 "   AND column_name IN ('secrets', 'raw', 'payload', 'endpoint')", 0, NULL), 0);
}

static void test_report_lists_and_aligns(void)
{
	struct ctl_run r = ctl(conninfo, "report", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	static const char *const views[] = { "daily_orders", "failed_deliveries", "fulfillment_backlog",
	                                     "order_status_summary", "routing_decisions",
	                                     "supplier_performance", "unroutable_lines" };
	for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
		const char *at = r.out ? strstr(r.out, views[i]) : NULL;
		CU_ASSERT_PTR_NOT_NULL(at);
		/* Each name comes with its description on the same line. */
		CU_ASSERT(at && strcspn(at, "\n") > strlen(views[i]) + 10);
	}
	ctl_run_free(&r);

	r = ctl(conninfo, "report", "supplier_performance", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	/* Header, 3 rows, "(3 rows)". Numbers are right-aligned: each ends
	 * where its column's name ends; no line ends in blanks. */
	char *lines[8];
	int n = 0;
	for (char *s = r.out, *save = NULL, *l; n < 8 && (l = strtok_r(s, "\n", &save)); s = NULL)
		lines[n++] = l;
	CU_ASSERT_EQUAL_FATAL(n, 5);
	CU_ASSERT_STRING_EQUAL(lines[4], "(3 rows)");
	CU_ASSERT(strncmp(lines[0], "supplier  requests", 18) == 0);
	static const char *const numeric[] = { "requests", "rejection_rate" };
	for (size_t k = 0; k < 2; k++) {
		size_t end = (size_t)(strstr(lines[0], numeric[k]) - lines[0]) + strlen(numeric[k]);
		for (int i = 1; i < 4; i++) {
			CU_ASSERT_FATAL(strlen(lines[i]) >= end);
			CU_ASSERT(lines[i][end - 1] >= '0' && lines[i][end - 1] <= '9');
			CU_ASSERT(lines[i][end] == ' ' || lines[i][end] == '\0');
		}
	}
	for (int i = 0; i < 4; i++)
		CU_ASSERT(lines[i][strlen(lines[i]) - 1] != ' ');
	CU_ASSERT(strncmp(lines[1], "acme    ", 8) == 0);
	ctl_run_free(&r);

	r = ctl(conninfo, "report", "secrets", NULL);
	CU_ASSERT_EQUAL(r.rc, 2);
	CU_ASSERT(r.err && strstr(r.err, "no report named 'secrets'"));
	ctl_run_free(&r);
}

/* Splits one RFC 4180 record at *p (ending in CRLF) into fields; moves *p past it. */
static int csv_record(const char **p, char fields[][128], int max)
{
	int n = 0;
	const char *s = *p;
	for (;;) {
		size_t k = 0;
		char *f = fields[n];
		if (*s == '"') {
			for (s++; *s && !(*s == '"' && s[1] != '"'); s++) {
				if (*s == '"')
					s++;
				if (k < 127)
					f[k++] = *s;
			}
			if (*s != '"')
				return -1;
			s++;
		} else {
			while (*s && *s != ',' && *s != '\r' && *s != '\n' && *s != '"')
				if (k < 127)
					f[k++] = *s++;
		}
		f[k] = '\0';
		n++;
		if (*s == ',' && n < max) {
			s++;
			continue;
		}
		if (s[0] != '\r' || s[1] != '\n')
			return -1;
		*p = s + 2;
		return n;
	}
}

static void test_report_csv_parses(void)
{
	struct ctl_run r = ctl(conninfo, "report", "unroutable_lines", "--csv", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r.out);
	char f[8][128];
	const char *p = r.out;
	CU_ASSERT_EQUAL_FATAL(csv_record(&p, f, 8), 6);
	CU_ASSERT_STRING_EQUAL(f[0], "sku");
	CU_ASSERT_STRING_EQUAL(f[5], "last_seen");
	CU_ASSERT_EQUAL_FATAL(csv_record(&p, f, 8), 6);
	CU_ASSERT_STRING_EQUAL(f[0], GONE);
	CU_ASSERT_STRING_EQUAL(f[1], "no_offer");
	CU_ASSERT_STRING_EQUAL(f[2], "2");
	CU_ASSERT_STRING_EQUAL(f[3], "2");
	CU_ASSERT_STRING_EQUAL(f[4], "3");
	CU_ASSERT_EQUAL_FATAL(csv_record(&p, f, 8), 6);
	CU_ASSERT_STRING_EQUAL(f[0], "SKU-G");
	CU_ASSERT_STRING_EQUAL(p, "");
	ctl_run_free(&r);

	/* A NULL is an empty field; 10 decisions and the header. */
	r = ctl(conninfo, "report", "routing_decisions", "--csv", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	int records = 0, fields = -1;
	p = r.out ? r.out : "";
	char g[20][128];
	while (*p) {
		int n = csv_record(&p, g, 20);
		CU_ASSERT_FATAL(n > 0);
		CU_ASSERT(fields < 0 || n == fields);
		fields = n;
		records++;
	}
	CU_ASSERT_EQUAL(records, 11);
	ctl_run_free(&r);
}

/* Runs sql/examples/NAME.sql with psql as the reporting role (vars: "-v"
 * settings or NULL); returns psql's exit status, unaligned output in *out. */
static int example(const char *name, const char *var, char **out)
{
	const char *bin = getenv("DROPSHIP_TEST_PGBIN"), *root = getenv("DROPSHIP_TEST_ROOT");
	char psql[400], file[400];
	snprintf(psql, sizeof psql, "%s/psql", bin ? bin : "/usr/bin");
	snprintf(file, sizeof file, "%s/sql/examples/%s.sql", root ? root : ".", name);
	const char *argv[] = { psql, "-X", "-q", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1", "-d", conninfo,
	                       "-c", "SET ROLE dropship_reporting", "-f", file, var ? "-v" : NULL, var, NULL };
	char *err = NULL;
	int rc = proc_run(argv, NULL, out, &err);
	if (rc != 0)
		fprintf(stderr, "%s: exit %d: %s\n", name, rc, err ? err : "");
	free(err);
	return rc;
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

static void test_examples_run_as_reporting_role(void)
{
	char *out = NULL;
	/* acme: R-1 40/20, R-3 20/10, R-5 line 2 9.50/5 (R-7 went to bolt). */
	CU_ASSERT_EQUAL(example("margin_per_supplier_per_week", "weeks=2", &out), 0);
	CU_ASSERT(out && strstr(out, "|acme|USD|3|4|69.50|35.00|34.50|49.6\n"));
	CU_ASSERT(out && strstr(out, "|bolt|USD|2|4|65.00|33.00|32.00|49.2\n"));
	/* ghost's one line failed and was taken back: it earned nothing. */
	CU_ASSERT(out && !strstr(out, "|ghost|"));
	free(out);
	CU_ASSERT_EQUAL(example("unroutable_skus", NULL, &out), 0);
	CU_ASSERT(out && strncmp(out, GONE "|no_offer|2|2|3|", strlen(GONE) + 16) == 0);
	CU_ASSERT(out && strstr(out, "\nSKU-G|no_offer|1|1|1|"));
	CU_ASSERT_EQUAL(count_lines(out), 2);
	free(out);
	/* Not shipped, delivered or cancelled. */
	CU_ASSERT_EQUAL(example("stuck_orders", "hours=0", &out), 0);
	CU_ASSERT_EQUAL(count_lines(out), 5);
	CU_ASSERT(out && strstr(out, "|R-2|"));
	CU_ASSERT(out && !strstr(out, "|R-1|"));
	free(out);
	CU_ASSERT_EQUAL(example("stuck_orders", NULL, &out), 0);
	CU_ASSERT_EQUAL(count_lines(out), 0);
	free(out);
	CU_ASSERT_EQUAL(example("missed_ship_deadlines", NULL, &out), 0);
	free(out);
}

static char *order_id_of(const char *ext)
{
	const char *v[] = { ext };
	return testdb_value(db, "SELECT id::text FROM orders WHERE external_id = $1", 1, v);
}

static int admin_get(int port, const char *path, const char *auth, struct https_resp *r)
{
	char hdrs[256] = "";
	if (auth)
		snprintf(hdrs, sizeof hdrs, "Authorization: %s\r\n", auth);
	return https_once(port, "GET", path, hdrs, NULL, 0, r);
}

static const char *error_code(const struct https_resp *r)
{
	static char code[64];
	json_t *j = json_loads(r->body ? r->body : "", 0, NULL);
	const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
	snprintf(code, sizeof code, "%s", c ? c : "");
	json_decref(j);
	return code;
}

static void test_admin_order_api(void)
{
	char *id = order_id_of("R-7"), path[96];
	CU_ASSERT_PTR_NOT_NULL_FATAL(id);
	snprintf(path, sizeof path, "/v1/admin/orders/%s", id);
	struct https_resp r;
	CU_ASSERT_EQUAL_FATAL(admin_get(srv.port, path, "Bearer " ADMIN_TOKEN, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	json_t *doc = json_loads(r.body, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(doc, "order_id")), id);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(doc, "external_id")), "R-7");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(doc, "store")), "shop");
	json_t *lines = json_object_get(doc, "lines"), *decs = json_object_get(doc, "routing_decisions");
	json_t *reqs = json_object_get(doc, "requests");
	CU_ASSERT_EQUAL(json_array_size(lines), 1);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(lines, 0), "supplier")), "bolt");
	CU_ASSERT_EQUAL(json_array_size(decs), 2);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(json_array_get(decs, 0), "candidates")), 2);
	CU_ASSERT_EQUAL(json_array_size(reqs), 2);
	json_t *first = json_array_get(reqs, 0), *ev = json_array_get(json_object_get(first, "events"), 0);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(first, "supplier")), "acme");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(first, "status")), "rejected");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(ev, "to")), "rejected");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(
		json_object_get(first, "deliveries"), 0), "state")), "delivered");
	/* Nothing secret: no store or supplier secrets, no raw payload. */
	CU_ASSERT_PTR_NULL(strstr(r.body, "whsec_"));
	json_decref(doc);
	https_resp_free(&r);

	CU_ASSERT_EQUAL(admin_get(srv.port, path, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 401);
	CU_ASSERT_STRING_EQUAL(error_code(&r), "missing_token");
	CU_ASSERT(r.headers && strstr(r.headers, "WWW-Authenticate: Bearer"));
	https_resp_free(&r);
	CU_ASSERT_EQUAL(admin_get(srv.port, path, "Bearer " ADMIN_TOKEN "x", &r), 0);
	CU_ASSERT_EQUAL(r.status, 401);
	CU_ASSERT_STRING_EQUAL(error_code(&r), "invalid_token");
	https_resp_free(&r);
	CU_ASSERT_EQUAL(admin_get(srv.port, path, "Basic " ADMIN_TOKEN, &r), 0);
	CU_ASSERT_EQUAL(r.status, 401);
	https_resp_free(&r);
	CU_ASSERT_EQUAL(admin_get(srv.port, "/v1/admin/orders/999999999", "Bearer " ADMIN_TOKEN, &r), 0);
	CU_ASSERT_EQUAL(r.status, 404);
	https_resp_free(&r);
	CU_ASSERT_EQUAL(admin_get(srv.port, "/v1/admin/orders/R-7", "Bearer " ADMIN_TOKEN, &r), 0);
	CU_ASSERT_EQUAL(r.status, 404);
	https_resp_free(&r);
	CU_ASSERT_EQUAL(https_once(srv.port, "DELETE", path, "Authorization: Bearer " ADMIN_TOKEN "\r\n", NULL, 0, &r), 0);
	CU_ASSERT_EQUAL(r.status, 405);
	https_resp_free(&r);

	/* Without a configured token the admin API does not exist, token or not. */
	struct testsrv off;
	CU_ASSERT_EQUAL_FATAL(testsrv_start(&off, conninfo, "workers = 1\n", 1), 0);
	CU_ASSERT_EQUAL(admin_get(off.port, path, "Bearer " ADMIN_TOKEN, &r), 0);
	CU_ASSERT_EQUAL(r.status, 404);
	https_resp_free(&r);
	CU_ASSERT_EQUAL(admin_get(off.port, path, "Bearer ", &r), 0);
	CU_ASSERT_EQUAL(r.status, 404);
	https_resp_free(&r);
	CU_ASSERT_EQUAL(testsrv_stop(&off, SIGTERM), 0);
	free(id);
}

static void test_order_show(void)
{
	char *id = order_id_of("R-5");
	CU_ASSERT_PTR_NOT_NULL_FATAL(id);
	struct ctl_run r = ctl(conninfo, "order", "show", id, NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	const char *out = r.out;
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "external id R-5"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "status      partially_routed"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nlines\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nrouting decisions\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nrequests\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "no_offer"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "acme 5.0000"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "fulfillment.accepted"));
	ctl_run_free(&r);

	r = ctl(conninfo, "order", "show", id, "--json", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	json_t *doc = r.out ? json_loads(r.out, 0, NULL) : NULL;
	CU_ASSERT_PTR_NOT_NULL(doc);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(doc, "lines")), 2);
	json_decref(doc);
	ctl_run_free(&r);

	r = ctl(conninfo, "order", "show", "999999999", NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT(r.err && strstr(r.err, "no order 999999999"));
	ctl_run_free(&r);
	CU_ASSERT_EQUAL(ctl_rc(conninfo, "order", "show", "R-5", NULL), 2);
	free(id);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "daily_orders counts, revenue and cost", test_daily_orders },
		{ "order_status_summary", test_order_status_summary },
		{ "supplier_performance rates, hours and on-time", test_supplier_performance },
		{ "unroutable_lines by SKU and reason", test_unroutable_lines },
		{ "fulfillment_backlog by supplier and age", test_fulfillment_backlog },
		{ "failed_deliveries", test_failed_deliveries },
		{ "routing_decisions with runner-up", test_routing_decisions },
		{ "the reporting role reads reports, not secrets", test_reporting_role_reads_only_reports },
		{ "report lists views and aligns columns", test_report_lists_and_aligns },
		{ "report --csv is RFC 4180", test_report_csv_parses },
		{ "sql/examples run as the reporting role", test_examples_run_as_reporting_role },
		{ "GET /v1/admin/orders/{id}", test_admin_order_api },
		{ "order show", test_order_show },
		{ NULL, NULL },
	};
	return harness_main("reporting", suite_init, suite_cleanup, tests);
}

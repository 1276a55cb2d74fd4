/* End to end: the supplier scorecard and the balanced policy, with real
 * suppliers (the simulator calling back) and dropshipd counting the
 * scorecard every 200 ms; and `dropshipctl simulate` over a history of
 * orders taken through the API, its figures worked out by hand.
 *
 * A supplier that rejects half its requests loses its share of a SKU
 * under balanced once its scorecard shows it, and wins it back once it
 * has recovered: all waits are for states of the database (requests
 * settled, the scorecard counted), never for time. */
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
#include "support/shop.h"
#include "support/testdb.h"
#include "support/testsrv.h"
#include "support/wait.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SUP_SECRET "whsec_c2Vjb25kLXNlY3JldC1mb3ItdGVzdHMtMTIzNA=="
#define PENALTY 20.0               /* the shop's, currency units per unit rejected or late */
#define MARGIN 1.0                 /* how clearly one supplier must be ahead before we rely on it */

static char conninfo[512];
static char cert[300];
static PGconn *db;
static struct testsrv srv;
static struct testsrv steady_sim, flaky_sim;
static int order_seq;

/* Starts a simulator for code calling back to dropshipd with short delays;
 * reject_rate "0" or "0.5". */
static int start_supplier(struct testsrv *s, const char *code, const char *reject_rate)
{
	char sup[128], url[64];
	snprintf(sup, sizeof sup, "%s=" SUP_SECRET, code);
	snprintf(url, sizeof url, "https://127.0.0.1:%d", srv.port);
	const char *sups[] = { sup, NULL };
	const char *extra[] = { "--callback-url", url, "--ca-file", cert, "--accept-after-ms", "20",
	                        "--ship-after-ms", "60", "--deliver-after-ms", "100", "--reject-rate", reject_rate,
	                        "--reject-reason", "capacity", "--seed", "7", NULL };
	if (testsrv_start_sim(s, sups, extra, 10000) < 0)
		return -1;
	char port[16];
	snprintf(port, sizeof port, "%d", s->port);
	const char *v[] = { code, port };
	return testdb_exec(db, "UPDATE suppliers SET endpoint = 'https://127.0.0.1:' || $2 || '/suppliers/'"
	                       " || $1 || '/fulfillments' WHERE code = $1", 2, v);
}

static int suite_init(void)
{
	const char *tls = testsrv_tls_dir();
	char conf[800];
	snprintf(cert, sizeof cert, "%s/server.crt", tls);
	if (testsrv_prepare_db("dropship_scorecard", SECRET, conninfo, sizeof conninfo) < 0 ||
	    !(db = testdb_connect(conninfo)))
		return -1;
	/* flaky sells MUG for 8.00 and is the only one to sell SOLO; steady
	 * sells MUG for 10.00. alpha, beta and gamma serve the history of the
	 * simulate test: nothing listens at their address, so their requests
	 * stay unanswered and their scorecard stays at the prior. */
	if (testdb_exec(db,
	        "WITH s AS (INSERT INTO suppliers (code, endpoint, secrets) VALUES"
	        "   ('flaky', 'https://127.0.0.1:1/f', ARRAY['" SUP_SECRET "']),"
	        "   ('steady', 'https://127.0.0.1:1/f', ARRAY['" SUP_SECRET "']),"
	        "   ('alpha', 'https://127.0.0.1:1/f', ARRAY['" SUP_SECRET "']),"
	        "   ('beta', 'https://127.0.0.1:1/f', ARRAY['" SUP_SECRET "']),"
	        "   ('gamma', 'https://127.0.0.1:1/f', ARRAY['" SUP_SECRET "']) RETURNING id, code)"
	        " INSERT INTO offers (supplier_id, sku, supplier_sku, cost, stock, lead_time_days)"
	        " SELECT s.id, o.sku, 'X-' || o.sku, o.cost, 100000, o.lead FROM s JOIN (VALUES"
	        "   ('flaky', 'MUG', 8.00, 2), ('steady', 'MUG', 10.00, 2), ('flaky', 'SOLO', 5.00, 2),"
	        "   ('alpha', 'P1', 10.00, 5), ('beta', 'P1', 11.00, 1), ('alpha', 'P2', 4.00, 5),"
	        "   ('gamma', 'P2', 4.50, 3), ('beta', 'P3', 7.00, 1), ('gamma', 'P3', 6.00, 3))"
	        "   o(code, sku, cost, lead) ON o.code = s.code", 0, NULL) != 0)
		return -1;
	snprintf(conf, sizeof conf,
	         "workers = 2\n[dispatch]\nallow_private_endpoints = true\ntls_ca_file = %s\n"
	         "[score]\nwindow_s = 3600\nrefresh_ms = 200\nprior_weight = 10\nprior_acceptance_pct = 90\n"
	         "prior_on_time_pct = 90\n", cert);
	if (testsrv_start(&srv, conninfo, conf, 1) < 0)
		return -1;
	return start_supplier(&steady_sim, "steady", "0") < 0 || start_supplier(&flaky_sim, "flaky", "0.5") < 0
	       ? -1 : 0;
}

static int suite_cleanup(void)
{
	int rc = srv.pid > 0 ? testsrv_stop(&srv, SIGTERM) : 0;
	testsrv_stop_sim(&steady_sim, 5000);
	testsrv_stop_sim(&flaky_sim, 5000);
	if (db)
		PQfinish(db);
	return rc == 0 ? 0 : -1;
}

/* Posts a one-line order to store; returns the supplier intake chose for
 * it (malloc'd), "" when unroutable, NULL when the order was refused. */
static char *post(const char *store, const char *sku, int qty)
{
	char id[32];
	snprintf(id, sizeof id, "SC-%d", ++order_seq);
	const struct shop_line lines[] = { { sku, qty, NULL, NULL } };
	json_t *j = shop_place(srv.port, store, SECRET, id, lines, 1);
	if (!j)
		return NULL;
	const char *s = json_string_value(json_object_get(json_array_get(json_object_get(j, "lines"), 0), "supplier"));
	char *supplier = strdup(s ? s : "");
	json_decref(j);
	return supplier;
}

/* Posts an order with several lines of quantity 1..; returns 0 when taken. */
static int post_lines(const char *store, const struct shop_line *lines, size_t n)
{
	char id[32];
	snprintf(id, sizeof id, "SC-%d", ++order_seq);
	json_t *j = shop_place(srv.port, store, SECRET, id, lines, n);
	int rc = j ? 0 : -1;
	json_decref(j);
	return rc;
}

/* Every request of the supplier has an outcome (none waits on it), and the
 * scorecard was counted after the last of them. */
static bool settled(void *arg)
{
	const char *v[] = { arg };
	return testdb_count(db,
	        "SELECT count(*) FROM suppliers s JOIN supplier_scores sc ON sc.supplier_id = s.id"
	        " WHERE s.code = $1"
	        "   AND NOT EXISTS (SELECT 1 FROM fulfillment_requests r WHERE r.supplier_id = s.id"
	        "     AND r.status IN ('pending', 'sent', 'accepted'))"
	        "   AND sc.answered = (SELECT count(*) FROM fulfillment_requests r WHERE r.supplier_id = s.id"
	        "     AND (r.accepted_at IS NOT NULL OR r.shipped_at IS NOT NULL OR r.status IN ('rejected', 'failed')))"
	        "   AND sc.judged = (SELECT count(*) FROM fulfillment_requests r WHERE r.supplier_id = s.id"
	        "     AND r.accepted_at IS NOT NULL AND (r.shipped_at IS NOT NULL OR r.rejected_at IS NOT NULL))",
	        1, v) == 1;
}

/* The expected unit cost of a supplier's offer at cost, from its
 * scorecard as counted now (docs/routing.md): cost + (1 - acceptance *
 * on-time rate) * penalty. */
static double expected(const char *code, double cost)
{
	const char *v[] = { code };
	char *acc = testdb_value(db, "SELECT sc.acceptance_ppm FROM supplier_scores sc JOIN suppliers s"
	                             " ON s.id = sc.supplier_id WHERE s.code = $1", 1, v);
	char *ot = testdb_value(db, "SELECT sc.on_time_ppm FROM supplier_scores sc JOIN suppliers s"
	                            " ON s.id = sc.supplier_id WHERE s.code = $1", 1, v);
	double a = acc ? strtod(acc, NULL) / 1e6 : 0.9, o = ot ? strtod(ot, NULL) / 1e6 : 0.9;
	free(acc);
	free(ot);
	return cost + (1 - a * o) * PENALTY;
}

/* Posts n SOLO orders (only flaky sells SOLO) and waits until flaky's
 * requests are settled and counted. */
static void warm_up(int n)
{
	for (int i = 0; i < n; i++) {
		char *s = post("shop", "SOLO", 1);
		CU_ASSERT_PTR_NOT_NULL(s);
		CU_ASSERT_STRING_EQUAL(s ? s : "?", "flaky");
		free(s);
	}
	CU_ASSERT_FATAL(wait_until(settled, (void *)"flaky", 30000, 100));
	CU_ASSERT_FATAL(wait_until(settled, (void *)"steady", 30000, 100));
}

/* n MUG orders; returns how many intake gave to supplier. */
static int mug_orders_to(int n, const char *supplier)
{
	int hits = 0;
	for (int i = 0; i < n; i++) {
		char *s = post("shop", "MUG", 1);
		hits += s && strcmp(s, supplier) == 0;
		free(s);
	}
	return hits;
}

static void test_store_takes_balanced(void)
{
	CU_ASSERT_EQUAL(ctl_rc(conninfo, "store", "add", "shop", "--update", "--policy", "balanced", "--penalty", "20",
	                       NULL), 0);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM stores WHERE code = 'shop' AND policy = 'balanced'"
	                                 " AND penalty = 20 AND min_acceptance_rate = 0", 0, NULL), 1);
	/* Bad terms name the option. */
	struct ctl_run r = ctl(conninfo, "store", "add", "shop", "--update", "--penalty", "-1", NULL);
	CU_ASSERT_EQUAL(r.rc, 2);
	CU_ASSERT_PTR_NOT_NULL(r.err ? strstr(r.err, "--penalty") : NULL);
	ctl_run_free(&r);
	r = ctl(conninfo, "store", "add", "shop", "--update", "--min-on-time-rate", "101", NULL);
	CU_ASSERT_EQUAL(r.rc, 2);
	CU_ASSERT_PTR_NOT_NULL(r.err ? strstr(r.err, "--min-on-time-rate") : NULL);
	ctl_run_free(&r);
}

/* Both suppliers start at the prior (90 % and 90 %: 19 % risk, 3.80 of
 * penalty each): flaky's 8.00 beats steady's 10.00. Then flaky rejects
 * half of its SOLO requests; its expected cost passes steady's and the
 * MUG orders go to steady. Restarted without rejections, flaky ships the
 * SOLO orders until its expected cost is below steady's again, and the
 * MUG orders come back. */
static void test_unreliable_supplier_loses_its_share_and_wins_it_back(void)
{
	CU_ASSERT_EQUAL_FATAL(mug_orders_to(1, "flaky"), 1);

	/* Warm-up: flaky's record of rejections builds up. */
	int batches = 0;
	do
		warm_up(10);
	while (++batches < 10 && !(expected("flaky", 8.0) > expected("steady", 10.0) + MARGIN));
	double ef = expected("flaky", 8.0), es = expected("steady", 10.0);
	fprintf(stderr, "after %d warm-up batches: flaky %.4f, steady %.4f\n", batches, ef, es);
	CU_ASSERT_FATAL(ef > es + MARGIN);
	CU_ASSERT(testdb_count(db, "SELECT acceptance_ppm FROM supplier_scores sc JOIN suppliers s"
	                           " ON s.id = sc.supplier_id WHERE s.code = 'flaky'", 0, NULL) < 800000);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM reporting.supplier_scorecard WHERE supplier = 'flaky'"
	                                 " AND rejection_rate_by_reason LIKE 'capacity %' AND rejected > 0", 0, NULL), 1);

	/* Flaky has lost its share. */
	CU_ASSERT_EQUAL(mug_orders_to(8, "steady"), 8);
	/* The last decision shows why: both candidates with their rates and expected costs. */
	char *flaky_exp = testdb_value(db, "SELECT c->>'expected_cost' FROM routing_decisions d,"
	                                   " jsonb_array_elements(d.candidates) c WHERE c->>'supplier' = 'flaky'"
	                                   " AND d.policy = 'balanced' ORDER BY d.decided_at DESC LIMIT 1", 0, NULL);
	char *steady_exp = testdb_value(db, "SELECT c->>'expected_cost' FROM routing_decisions d,"
	                                    " jsonb_array_elements(d.candidates) c WHERE c->>'supplier' = 'steady'"
	                                    " ORDER BY d.decided_at DESC LIMIT 1", 0, NULL);
	CU_ASSERT(flaky_exp && steady_exp && strtod(flaky_exp, NULL) > strtod(steady_exp, NULL));
	free(flaky_exp);
	free(steady_exp);
	/* order show folds each candidate's expected cost and rates into the decision. */
	char *last = testdb_value(db, "SELECT max(l.order_id)::text FROM order_lines l WHERE l.sku = 'MUG'", 0, NULL);
	struct ctl_run r = ctl(conninfo, "order", "show", last ? last : "0", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_PTR_NOT_NULL(r.out ? strstr(r.out, "steady 10.0000 [expected ") : NULL);
	CU_ASSERT_PTR_NOT_NULL(r.out ? strstr(r.out, "flaky 8.0000 [expected ") : NULL);
	ctl_run_free(&r);
	free(last);
	r = ctl(conninfo, "supplier", "show", "flaky", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_PTR_NOT_NULL(r.out ? strstr(r.out, "acceptance rate") : NULL);
	CU_ASSERT_PTR_NOT_NULL(r.out ? strstr(r.out, "capacity") : NULL);
	ctl_run_free(&r);

	/* Recovery: the same supplier, now accepting everything. */
	CU_ASSERT_EQUAL(testsrv_stop_sim(&flaky_sim, 5000), 0);
	CU_ASSERT_EQUAL_FATAL(start_supplier(&flaky_sim, "flaky", "0"), 0);
	batches = 0;
	do
		warm_up(10);
	while (++batches < 20 && !(expected("flaky", 8.0) < expected("steady", 10.0) - MARGIN));
	ef = expected("flaky", 8.0);
	es = expected("steady", 10.0);
	fprintf(stderr, "after %d recovery batches: flaky %.4f, steady %.4f\n", batches, ef, es);
	CU_ASSERT_FATAL(ef < es - MARGIN);
	CU_ASSERT_EQUAL(mug_orders_to(8, "flaky"), 8);
}

/* supplier show: the scorecard as the view has it; JSON too; an unknown code. */
static void test_supplier_show(void)
{
	CU_ASSERT_FATAL(wait_until(settled, (void *)"steady", 30000, 100));
	struct ctl_run r = ctl(conninfo, "supplier", "show", "steady", "--json", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	json_t *j = r.out ? json_loads(r.out, 0, NULL) : NULL;
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "code")), "steady");
	char *want = testdb_value(db, "SELECT acceptance_rate::text FROM reporting.supplier_scorecard"
	                              " WHERE supplier = 'steady'", 0, NULL);
	const char *got = json_string_value(json_object_get(j, "acceptance_rate"));
	CU_ASSERT(want && got && strcmp(want, got) == 0);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "rejected")), 0);
	free(want);
	json_decref(j);
	ctl_run_free(&r);
	r = ctl(conninfo, "supplier", "show", "nobody", NULL);
	CU_ASSERT_EQUAL(r.rc, 1);
	CU_ASSERT_PTR_NOT_NULL(r.err ? strstr(r.err, "no supplier 'nobody'") : NULL);
	ctl_run_free(&r);
	r = ctl(conninfo, "supplier", "show", NULL);
	CU_ASSERT_EQUAL(r.rc, 2);
	ctl_run_free(&r);
}

/* ---- simulate ---- */

/* Runs simulate with args for store hist and returns its one store's JSON object (caller decrefs). */
static json_t *simulate(const char *const *args)
{
	const char *argv[CTL_ARGS_MAX] = { "simulate", "--store", "hist", "--json" };
	size_t n = 4;
	for (size_t i = 0; args[i] && n + 1 < CTL_ARGS_MAX; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	struct ctl_run r = ctl_argv(conninfo, NULL, argv);
	CU_ASSERT_EQUAL(r.rc, 0);
	json_t *doc = r.out ? json_loads(r.out, 0, NULL) : NULL;
	CU_ASSERT_EQUAL(json_array_size(doc), 1);
	json_t *st = json_incref(json_array_get(doc, 0));
	json_decref(doc);
	ctl_run_free(&r);
	return st;
}

static long long num(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

/* Entry i of a store's top SKUs is sku, with lines moving and their cost change. */
static void check_top(json_t *st, size_t i, const char *sku, long long lines, const char *change)
{
	json_t *e = json_array_get(json_object_get(st, "top_skus"), i);
	HARNESS_CHECK(strcmp(str(e, "sku"), sku) == 0, "top %zu: %s, want %s", i, str(e, "sku"), sku);
	HARNESS_CHECK(num(e, "lines") == lines, "top %zu: %lld lines, want %lld", i, num(e, "lines"), lines);
	HARNESS_CHECK(strcmp(str(e, "cost_change"), change) == 0, "top %zu: cost change %s, want %s", i,
	              str(e, "cost_change"), change);
}

/* The history, routed under cheapest with a 10 % tolerance (costs per unit;
 * alpha 5 days, beta 1, gamma 3):
 *   P1: alpha 10.00, beta 11.00;  P2: alpha 4.00, gamma 4.50;  P3: beta 7.00, gamma 6.00
 *   H1  P1 x1          alpha 10.00                                   1 parcel
 *   H2  P2 x2, P3 x1   alpha 8.00 + gamma 6.00 = 14.00 split; gamma alone
 *                      9.00 + 6.00 = 15.00 is within 10 %: gamma, gamma  1 parcel
 *   H3  P1 x1, P3 x1   alpha 10.00 + gamma 6.00 = 16.00; beta alone 18.00 is
 *                      not within 10 %: alpha, gamma                  2 parcels
 * 3 orders, 5 lines, 41.00, 4 parcels. */
static void build_history(void)
{
	CU_ASSERT_EQUAL_FATAL(ctl_rc(conninfo, "store", "add", "hist", "--secret", SECRET, "--policy", "cheapest",
	                             "--penalty", "10", NULL), 0);
	const struct shop_line h1[] = { { "P1", 1, NULL, NULL } };
	const struct shop_line h2[] = { { "P2", 2, NULL, NULL }, { "P3", 1, NULL, NULL } };
	const struct shop_line h3[] = { { "P1", 1, NULL, NULL }, { "P3", 1, NULL, NULL } };
	CU_ASSERT_EQUAL_FATAL(post_lines("hist", h1, 1), 0);
	CU_ASSERT_EQUAL_FATAL(post_lines("hist", h2, 2), 0);
	CU_ASSERT_EQUAL_FATAL(post_lines("hist", h3, 2), 0);
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM routing_decisions d JOIN stores st ON st.id = d.store_id"
	                                 " JOIN suppliers s ON s.id = d.supplier_id WHERE st.code = 'hist'"
	                                 " AND s.code = 'gamma'", 0, NULL), 3);
}

static void test_simulate_fastest(void)
{
	build_history();
	/* Fastest: H1 P1 -> beta 11.00; H2 B is gamma 9.00 + beta 7.00 = 16.00,
	 * gamma alone 15.00 within 10 %: gamma, gamma (unchanged); H3 beta for
	 * both, 18.00. 3 lines move, 44.00, 3 parcels; P1 moves twice (+1.00
	 * each), P3 once (7.00 - 6.00). */
	static const char *const args[] = { "--policy", "fastest", NULL };
	json_t *st = simulate(args);
	CU_ASSERT_STRING_EQUAL(str(st, "store"), "hist");
	CU_ASSERT_STRING_EQUAL(str(st, "policy"), "fastest");
	CU_ASSERT_EQUAL(num(st, "orders"), 3);
	CU_ASSERT_EQUAL(num(st, "lines"), 5);
	CU_ASSERT_EQUAL(num(st, "lines_changed"), 3);
	CU_ASSERT_EQUAL(num(st, "routed_before"), 5);
	CU_ASSERT_EQUAL(num(st, "routed_after"), 5);
	CU_ASSERT_STRING_EQUAL(str(st, "landed_cost_before"), "41.0000");
	CU_ASSERT_STRING_EQUAL(str(st, "landed_cost_after"), "44.0000");
	CU_ASSERT_STRING_EQUAL(str(st, "on_time_rate_before"), "81.00");   /* the prior: 90 % x 90 % */
	CU_ASSERT_STRING_EQUAL(str(st, "on_time_rate_after"), "81.00");
	CU_ASSERT_EQUAL(num(st, "parcels_before"), 4);
	CU_ASSERT_EQUAL(num(st, "parcels_after"), 3);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(st, "top_skus")), 2);
	check_top(st, 0, "P1", 2, "2.0000");
	check_top(st, 1, "P3", 1, "1.0000");
	json_decref(st);
}

/* No tolerance: H2 stays split (alpha 8.00 + gamma 6.00): P2 moves from
 * gamma to alpha, 1.00 cheaper; 40.00, 5 parcels. */
static void test_simulate_tolerance(void)
{
	static const char *const args[] = { "--policy", "cheapest", "--split-tolerance", "0", "--top", "1", NULL };
	json_t *st = simulate(args);
	CU_ASSERT_EQUAL(num(st, "lines_changed"), 1);
	CU_ASSERT_STRING_EQUAL(str(st, "landed_cost_after"), "40.0000");
	CU_ASSERT_EQUAL(num(st, "parcels_after"), 5);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(st, "top_skus")), 1);
	check_top(st, 0, "P2", 1, "-1.0000");
	json_decref(st);
}

/* As if gamma had been accepting half its requests when the history was
 * routed (its recorded acceptance rate becomes 50 %): with a penalty of
 * 10.00, risk 1 - 0.9 x 0.9 = 19 % adds 1.90 to alpha and beta, 1 - 0.5 x
 * 0.9 = 55 % adds 5.50 to gamma.
 *   H1  P1: alpha 11.90 < beta 12.90: alpha (unchanged)
 *   H2  P2: alpha 5.90 < gamma 10.00; P3: beta 8.90 < gamma 11.50: alpha, beta;
 *       gamma alone 2 x 10.00 + 11.50 = 31.50 is not within 10 % of 20.70
 *   H3  P1 alpha 11.90, P3 beta 8.90 = 20.80; beta alone 12.90 + 8.90 = 21.80
 *       is within 10 %: beta, beta
 * 4 lines move; 10 + 8 + 7 + 11 + 7 = 43.00; 1 + 2 + 1 = 4 parcels; the
 * expected on-time rate goes from (3 x 45 % + 2 x 81 %) / 5 = 59.40 % to 81 %. */
static void test_simulate_balanced(void)
{
	CU_ASSERT_EQUAL(testdb_exec(db,
	        "UPDATE routing_decisions d SET candidates = (SELECT jsonb_agg(CASE WHEN c->>'supplier' = 'gamma'"
	        "   THEN jsonb_set(c, '{acceptance_rate}', '\"50.0000\"') ELSE c END) FROM jsonb_array_elements(d.candidates) c)"
	        " FROM stores st WHERE st.id = d.store_id AND st.code = 'hist'", 0, NULL), 0);
	static const char *const args[] = { "--policy", "balanced", NULL };
	json_t *st = simulate(args);
	CU_ASSERT_EQUAL(num(st, "lines_changed"), 4);
	CU_ASSERT_STRING_EQUAL(str(st, "landed_cost_before"), "41.0000");
	CU_ASSERT_STRING_EQUAL(str(st, "landed_cost_after"), "43.0000");
	CU_ASSERT_STRING_EQUAL(str(st, "on_time_rate_before"), "59.40");
	CU_ASSERT_STRING_EQUAL(str(st, "on_time_rate_after"), "81.00");
	CU_ASSERT_EQUAL(num(st, "parcels_after"), 4);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(st, "top_skus")), 3);
	check_top(st, 0, "P3", 2, "2.0000");
	check_top(st, 1, "P1", 1, "1.0000");
	check_top(st, 2, "P2", 1, "-1.0000");
	json_decref(st);
	/* A penalty of 0 is cheapest again: nothing moves. */
	static const char *const none[] = { "--policy", "balanced", "--penalty", "0", NULL };
	st = simulate(none);
	CU_ASSERT_EQUAL(num(st, "lines_changed"), 0);
	CU_ASSERT_STRING_EQUAL(str(st, "landed_cost_after"), "41.0000");
	json_decref(st);
}

/* The period, the other formats, bad options; and nothing written. */
static void test_simulate_period_formats_and_errors(void)
{
	long before = testdb_count(db, "SELECT count(*) FROM routing_decisions", 0, NULL);
	static const char *const later[] = { "--policy", "fastest", "--since", "2100-01-01T00:00:00Z", NULL };
	json_t *st = simulate(later);
	CU_ASSERT_EQUAL(num(st, "orders"), 0);
	json_decref(st);
	static const char *const recent[] = { "--policy", "fastest", "--since", "1h", "--until", "2100-01-01T00:00:00Z",
	                                      NULL };
	st = simulate(recent);
	CU_ASSERT_EQUAL(num(st, "orders"), 3);
	json_decref(st);

	struct ctl_run r = ctl(conninfo, "simulate", "--policy", "fastest", "--store", "hist", "--csv", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_PTR_NOT_NULL(r.out ? strstr(r.out, "store,policy,orders,lines,lines_changed,") : NULL);
	CU_ASSERT_PTR_NOT_NULL(r.out ? strstr(r.out, "\r\nhist,fastest,3,5,3,5,5,41.0000,44.0000,81.00,81.00,4,3,"
	                                             "P1:2;P3:1\r\n") : NULL);
	ctl_run_free(&r);
	r = ctl(conninfo, "simulate", "--policy", "fastest", "--store", "hist", NULL);
	CU_ASSERT_EQUAL(r.rc, 0);
	CU_ASSERT_PTR_NOT_NULL(r.out ? strstr(r.out, "41.0000 -> 44.0000 (+7.32 %)") : NULL);
	CU_ASSERT_PTR_NOT_NULL(r.out ? strstr(r.out, " 4 -> 3\n") : NULL);
	ctl_run_free(&r);

	static const struct { const char *args[8]; int rc; const char *says; } bad[] = {
		{ { "simulate", NULL }, 2, "--policy" },
		{ { "simulate", "--policy", "slowest", NULL }, 2, "--policy" },
		{ { "simulate", "--policy", "fastest", "--since", "yesterday", NULL }, 2, "--since" },
		{ { "simulate", "--policy", "fastest", "--penalty", "1.23456", NULL }, 2, "--penalty" },
		{ { "simulate", "--policy", "fastest", "--csv", "--json", NULL }, 2, "--csv" },
		{ { "simulate", "--policy", "fastest", "--store", "nowhere", NULL }, 1, "no store 'nowhere'" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		r = ctl_argv(conninfo, NULL, bad[i].args);
		HARNESS_CHECK(r.rc == bad[i].rc, "case %zu: exit %d, want %d", i, r.rc, bad[i].rc);
		HARNESS_CHECK(r.err && strstr(r.err, bad[i].says), "case %zu: stderr %s", i, r.err ? r.err : "");
		ctl_run_free(&r);
	}
	CU_ASSERT_EQUAL(testdb_count(db, "SELECT count(*) FROM routing_decisions", 0, NULL), before);
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "store add takes the balanced terms", test_store_takes_balanced },
		{ "an unreliable supplier loses its share under balanced and wins it back",
		  test_unreliable_supplier_loses_its_share_and_wins_it_back },
		{ "supplier show prints the scorecard", test_supplier_show },
		{ "simulate fastest over a history, by hand", test_simulate_fastest },
		{ "simulate without split tolerance", test_simulate_tolerance },
		{ "simulate: period, formats, errors; writes nothing", test_simulate_period_formats_and_errors },
		{ "simulate balanced on the recorded scorecard", test_simulate_balanced },
		{ NULL, NULL },
	};
	return harness_main("scorecard", suite_init, suite_cleanup, tests);
}

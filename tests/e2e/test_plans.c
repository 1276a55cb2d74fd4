/* Plans of the hot statements: every prepared statement of intake, plan,
 * callback, dispatch, replan, stock and feed, EXPLAINed with sample
 * parameters on an analyzed database of a few thousand orders
 * (tests/scale/gen-orders.sql), under a generic plan and under a custom
 * plan. On orders, order_lines,
 * fulfillment_requests, outbox, request_events and routing_decisions no
 * plan may scan the table, and every index scan must constrain the index's
 * key (e.g. order_lines_pkey by store_id AND order_id, not store_id alone).
 * This asserts the shape of plans, not their time: a statement whose cost
 * would grow with history fails here on a small database. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "backlog/backlog.h"
#include "callback/callback.h"
#include "dispatch/dispatch.h"
#include "feed/feed.h"
#include "intake/intake.h"
#include "plan/plan.h"
#include "replan/replan.h"
#include "rescore/rescore.h"
#include "stock/stock.h"
#include "support/ctl.h"
#include "support/harness.h"
#include "support/proc.h"
#include "support/testdb.h"

#define ORDERS "3000"

static char conninfo[512];
static PGconn *db;

/* The tables whose size grows with history. */
static const char *const watched[] = {
	"orders", "order_lines", "fulfillment_requests", "outbox", "request_events", "routing_decisions", NULL,
};

/* Each index a hot statement may use on a watched table, and the columns
 * its condition must name: the index's key, or the part of it that finds
 * a bounded set of rows. An index missing here fails the test, so a new
 * one is looked at before it is relied on. */
static const struct { const char *index, *cols[3]; } index_keys[] = {
	{ "orders_pkey", { "store_id", "id" } },
	{ "orders_store_id_external_id_key", { "store_id", "external_id" } },
	{ "orders_id_idx", { "id" } },
	{ "orders_status_idx", { "status" } },
	{ "order_lines_pkey", { "store_id", "order_id" } },
	{ "order_lines_request_idx", { "request_id" } },
	{ "fulfillment_requests_pkey", { "id" } },
	{ "fulfillment_requests_order_idx", { "store_id", "order_id" } },
	{ "fulfillment_requests_due_idx", { "due_at" } },
	{ "outbox_pkey", { "id" } },
	{ "outbox_request_idx", { "request_id" } },
	{ "outbox_due_id_idx", { "next_attempt_at" } },
	{ "request_events_supplier_id_webhook_id_key", { "supplier_id", "webhook_id" } },
	{ "request_events_request_idx", { "request_id" } },
	{ "routing_decisions_pkey", { "store_id", "order_id", "line_no" } },
	{ "order_lines_waiting_idx", { "sku" } },
};

/* Statements that read a whole partial index on purpose: what it holds is
 * bounded by something other than history. */
static const struct { const char *stmt, *index; } whole_index[] = {
	/* the expiry sweep: every line still waiting, at most each store's hold of them */
	{ "replan_expire", "order_lines_waiting_idx" },
	/* the outbox gauges: every message not yet delivered, the backlog, never the delivered history */
	{ "backlog_outbox", "outbox_due_id_idx" },
	/* the stranded-orders gauge: the unroutable lines and the failed messages, each request of
	 * those then by its key (stranded orders are an operator's to-do list) */
	{ "backlog_stranded", "order_lines_unroutable_idx" },
	{ "backlog_stranded", "outbox_failed_idx" },
};

static int reads_whole_index(const char *stmt, const char *index)
{
	for (size_t i = 0; i < sizeof whole_index / sizeof whole_index[0]; i++)
		if (strcmp(whole_index[i].stmt, stmt) == 0 && strcmp(whole_index[i].index, index) == 0)
			return 1;
	return 0;
}

/* Statements that read a window of history through an index on time: the
 * window bounds what they read, and the condition must name its column. */
static const struct { const char *stmt, *index, *col; } window_index[] = {
	/* the supplier scorecard: the requests of the last window_s seconds */
	{ "rescore_count", "fulfillment_requests_created_idx", "created_at" },
};

static const char *window_col(const char *stmt, const char *index)
{
	for (size_t i = 0; i < sizeof window_index / sizeof window_index[0]; i++)
		if (strcmp(window_index[i].stmt, stmt) == 0 && strcmp(window_index[i].index, index) == 0)
			return window_index[i].col;
	return NULL;
}

/* Sample parameters of each statement: a query returning one row whose
 * columns are the parameters, in order. Every prepared statement must have
 * an entry (a new statement is then checked too). */
static const struct { const char *stmt, *params; } samples[] = {
	{ "intake_store", "SELECT code FROM stores LIMIT 1" },
	{ "intake_existing", "SELECT '{' || store_id || '}', '{\"' || external_id || '\"}' FROM orders LIMIT 1" },
	{ "intake_order_ids", "SELECT '3'" },
	{ "intake_orders_insert",
	  "SELECT '{1}', '{900000001}', '{new-1}', '{routed}', '{EUR}', '{2026-11-22T10:00:00Z}', '{a@b.c}',"
	  " '{Ann}', '{Ann}', '{l1}', '{NULL}', '{Berlin}', '{NULL}', '{10115}', '{DE}', '{NULL}', '{\"{}\"}',"
	  " '{w1}', '{NULL}', '{NULL}'" },
	{ "intake_lines_insert",
	  "SELECT '{1}', '{900000001}', '{1}', '{SKU-1}', '{1}', '{1.00}', '{t}', '{routed}', '{NULL}',"
	  " '{' || supplier_id || '}', '{' || id || '}', '{1}', '{1.0}', '{NULL}', '{true}',"
	  " '{0f8fad5b-d9cb-469f-a165-70867728950e}', '{466157049}' FROM offers LIMIT 1" },
	{ "plan_decisions_first",
	  "SELECT '{1}', '{900000001}', '{1}', '{cheapest}', '{NULL}', '{NULL}', '{no_offer}', '{\"[]\"}',"
	  " '{exact}', '{false}'" },
	{ "intake_notify", NULL },
	{ "intake_cancel", "SELECT store_id, external_id FROM orders WHERE status = 'routed' LIMIT 1" },
	{ "intake_cancel_requests", "SELECT store_id, external_id FROM orders WHERE status = 'routed' LIMIT 1" },
	{ "plan_candidates", "SELECT '{SKU-1,SKU-2,SKU-3}', '{}'" },
	{ "plan_reserve", "SELECT '{' || min(id) || ',' || max(id) || '}', '{1,1}' FROM offers" },
	{ "plan_requests_insert",
	  "SELECT '{0f8fad5b-d9cb-469f-a165-70867728950e}', '{1}', '{1}', '{' || min(id) || '}' FROM suppliers" },
	{ "plan_outbox_insert",
	  "SELECT '{0f8fad5b-d9cb-469f-a165-70867728950e}', '{' || min(id) || '}', '{1}', '{\"{}\"}'"
	  " FROM suppliers" },
	{ "callback_supplier", "SELECT code FROM suppliers LIMIT 1" },
	{ "callback_lock", "SELECT '{' || id || '}', '{' || supplier_id || '}', '{w1}' FROM fulfillment_requests LIMIT 1" },
	{ "callback_apply",
	  "SELECT '{' || id || '}', '{' || supplier_id || '}', '{w1}', '{fulfillment.rejected}', '{accepted}',"
	  " '{rejected}', '{NULL}', '{\"{}\"}', '{NULL}', '{NULL}', '{NULL}', '{out_of_stock}', '{\"{1,2}\"}'"
	  " FROM fulfillment_requests WHERE status = 'accepted' LIMIT 1" },
	{ "plan_order_status",
	  "SELECT '{' || store_id || '}', '{' || order_id || '}', '{false}' FROM fulfillment_requests LIMIT 1" },
	{ "callback_notify_store",
	  "SELECT '{' || store_id || '}', '{' || order_id || '}', '{' || id || '}', '{shipped}', '{w1}'"
	  " FROM fulfillment_requests LIMIT 1" },
	{ "callback_notify", NULL },
	{ "callback_notify_platform",
	  "SELECT '{' || store_id || '}', '{' || order_id || '}', '{' || id || '}', '{w1}', '{\"{1,2}\"}'"
	  " FROM fulfillment_requests LIMIT 1" },
	{ "callback_timeout_cancel", "SELECT '{' || id || '}' FROM fulfillment_requests LIMIT 1" },
	{ "plan_lines_reroute",
	  "SELECT '{' || store_id || '}', '{' || order_id || '}', '{1}', '{routed}', '{NULL}', '{1}', '{1}',"
	  " '{1}', '{1.0}', '{0f8fad5b-d9cb-469f-a165-70867728950e}' FROM order_lines LIMIT 1" },
	{ "plan_decisions_next",
	  "SELECT '{' || store_id || '}', '{' || order_id || '}', '{1}', '{cheapest}', '{NULL}', '{NULL}',"
	  " '{no_offer}', '{\"[]\"}', '{exact}', '{false}' FROM order_lines LIMIT 1" },
	{ "dispatch_claim", "SELECT '64', '0f8fad5b-d9cb-469f-a165-70867728950e', '{}', '15000'" },
	{ "dispatch_record",
	  "SELECT '{' || id || '}', '{0f8fad5b-d9cb-469f-a165-70867728950e}', '{delivered}', '{200}', '{NULL}',"
	  " '{NULL}', '{1700000000000}', '{12}', '{0}', '{2}' FROM outbox LIMIT 1" },
	{ "dispatch_deadlines", NULL },
	{ "replan_claim", NULL },
	{ "replan_requeue", "SELECT '{SKU-1}'" },
	{ "replan_expire", NULL },
	{ "replan_prune", NULL },
	{ "dispatch_failures", NULL },
	{ "callback_failures_done", "SELECT '{' || id || '}' FROM fulfillment_requests LIMIT 1" },
	{ "dispatch_steps",
	  "SELECT '{' || id || '}', '{1}', '{\"[{\\\"step\\\": 1, \\\"action\\\": \\\"notes\\\", \\\"method\\\": \\\"GET\\\","
	  " \\\"path\\\": \\\"/\\\", \\\"started_ms\\\": 1700000000000, \\\"latency_ms\\\": 3}]\"}' FROM outbox LIMIT 1" },
	{ "callback_failures_held", "SELECT '{' || id || '}' FROM fulfillment_requests LIMIT 1" },
	{ "feed_supplier", "SELECT code FROM suppliers LIMIT 1" },
	{ "feed_offers", "SELECT min(supplier_id)::text, '{SKU-1,SKU-2,SKU-3}' FROM offers" },
	{ "stock_check", "SELECT now()::text" },
	{ "stock_lock", "SELECT '{' || min(id) || ',' || max(id) || '}' FROM offers" },
	{ "stock_apply",
	  "SELECT now()::text, '{' || min(id) || ',' || max(id) || '}', '{5,6}', '{}', '{2.5,3}', '{}', '{1,NULL}',"
	  " '{*,US;CA}' FROM offers" },
	{ "dispatch_release",
	  "SELECT '{' || id || '}', '{0f8fad5b-d9cb-469f-a165-70867728950e}', '{1000}' FROM outbox LIMIT 1" },
	{ "backlog_outbox", NULL },
	{ "backlog_stranded", NULL },
	{ "rescore_count", "SELECT '2592000', '54000'" },
	{ "rescore_save",
	  "SELECT '{' || min(id) || '}', '{2026-11-22T10:00:00Z}', '{3}', '{2}', '{1}', '{1}', '{0}',"
	  " '{\"{\\\"timeout\\\": 1}\"}', '{1}', '{1}', '{1.5}', '{NULL}', '{10}', '{900000}', '{900000}'"
	  " FROM suppliers" },
};

static int is_watched(const char *table)
{
	for (const char *const *w = watched; *w; w++)
		if (strcmp(*w, table) == 0)
			return 1;
	return 0;
}

/* True when cond names column col (as "col", "x.col" or "(col"). */
static int cond_names(const char *cond, const char *col)
{
	char pat[96];
	snprintf(pat, sizeof pat, "(^|[^a-z_])%s([^a-z_]|$)", col);
	regex_t re;
	if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0)
		return 0;
	int hit = regexec(&re, cond, 0, NULL, 0) == 0;
	regfree(&re);
	return hit;
}

/* The table an index belongs to (static buffer), or "" when unknown. */
static const char *index_table(const char *index)
{
	static char table[128];
	const char *v[1] = { index };
	char *t = testdb_value(db, "SELECT tablename FROM pg_indexes WHERE indexname = $1", 1, v);
	snprintf(table, sizeof table, "%s", t ? t : "");
	free(t);
	return table;
}

/* Walks a plan node and its children; appends a line to problems for each
 * violation. */
static void check_node(json_t *node, const char *stmt, const char *mode, char *problems, size_t cap)
{
	const char *type = json_string_value(json_object_get(node, "Node Type"));
	const char *rel = json_string_value(json_object_get(node, "Relation Name"));
	const char *index = json_string_value(json_object_get(node, "Index Name"));
	const char *cond = json_string_value(json_object_get(node, "Index Cond"));
	size_t used = strlen(problems);
	const char *wcol = index ? window_col(stmt, index) : NULL;
	if (type && rel && strcmp(type, "Seq Scan") == 0 && is_watched(rel))
		snprintf(problems + used, cap - used, "%s (%s): Seq Scan on %s\n", stmt, mode, rel);
	else if (wcol) {
		if (!cond || !cond_names(cond, wcol))
			snprintf(problems + used, cap - used, "%s (%s): %s scanned without %s (cond: %s)\n", stmt, mode,
			         index, wcol, cond ? cond : "none");
	} else if (index && is_watched(index_table(index)) && !(reads_whole_index(stmt, index) && !cond)) {
		size_t k = 0, nk = sizeof index_keys / sizeof index_keys[0];
		while (k < nk && strcmp(index_keys[k].index, index) != 0)
			k++;
		if (k == nk) {
			snprintf(problems + used, cap - used, "%s (%s): index %s is not in index_keys\n", stmt, mode,
			         index);
		} else {
			for (int c = 0; c < 3 && index_keys[k].cols[c]; c++)
				if (!cond || !cond_names(cond, index_keys[k].cols[c])) {
					snprintf(problems + used, cap - used, "%s (%s): %s scanned without %s (cond: %s)\n",
					         stmt, mode, index, index_keys[k].cols[c], cond ? cond : "none");
					break;
				}
		}
	}
	json_t *kids = json_object_get(node, "Plans");
	size_t i;
	json_t *kid;
	json_array_foreach(kids, i, kid)
		check_node(kid, stmt, mode, problems, cap);
}

/* EXPLAINs statement name (prepared as sql) with its sample parameters
 * under both plan cache modes; appends violations to problems. */
static void check_statement(const char *name, const char *sql, char *problems, size_t cap)
{
	size_t s = 0, ns = sizeof samples / sizeof samples[0];
	while (s < ns && strcmp(samples[s].stmt, name) != 0)
		s++;
	size_t used = strlen(problems);
	if (s == ns) {
		snprintf(problems + used, cap - used, "%s: no sample parameters in test_plans.c\n", name);
		return;
	}
	PGresult *prep = PQprepare(db, name, sql, 0, NULL);
	if (PQresultStatus(prep) != PGRES_COMMAND_OK) {
		snprintf(problems + used, cap - used, "%s: cannot prepare: %s", name, PQresultErrorMessage(prep));
		PQclear(prep);
		return;
	}
	PQclear(prep);
	char call[8192];
	size_t w = (size_t)snprintf(call, sizeof call, "EXPLAIN (FORMAT JSON) EXECUTE %s", name);
	if (samples[s].params) {
		PGresult *pr = PQexec(db, samples[s].params);
		if (PQresultStatus(pr) != PGRES_TUPLES_OK || PQntuples(pr) != 1) {
			snprintf(problems + used, cap - used, "%s: the sample parameters' query gave no row: %s\n", name,
			         PQresultErrorMessage(pr));
			PQclear(pr);
			return;
		}
		for (int c = 0; c < PQnfields(pr); c++) {
			char *lit = PQgetisnull(pr, 0, c) ? NULL
			            : PQescapeLiteral(db, PQgetvalue(pr, 0, c), (size_t)PQgetlength(pr, 0, c));
			w += (size_t)snprintf(call + w, sizeof call - w, "%s%s", c ? ", " : " (", lit ? lit : "NULL");
			PQfreemem(lit);
		}
		snprintf(call + w, sizeof call - w, ")");
		PQclear(pr);
	}
	static const char *const modes[] = { "force_generic_plan", "force_custom_plan" };
	for (int m = 0; m < 2; m++) {
		char set[64];
		snprintf(set, sizeof set, "SET plan_cache_mode = %s", modes[m]);
		CU_ASSERT_FATAL(testdb_exec(db, set, 0, NULL) == 0);
		PGresult *ex = PQexec(db, call);
		if (PQresultStatus(ex) != PGRES_TUPLES_OK) {
			used = strlen(problems);
			snprintf(problems + used, cap - used, "%s: EXPLAIN failed: %s", name, PQresultErrorMessage(ex));
		} else {
			json_t *doc = json_loads(PQgetvalue(ex, 0, 0), 0, NULL);
			check_node(json_object_get(json_array_get(doc, 0), "Plan"), name, modes[m] + 6, problems, cap);
			json_decref(doc);
		}
		PQclear(ex);
	}
	char dealloc[128];
	snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", name);
	testdb_exec(db, dealloc, 0, NULL);
}

static void check_tables(const struct db_stmt_def *const *tables, char *problems, size_t cap)
{
	for (const struct db_stmt_def *const *t = tables; *t; t++)
		for (const struct db_stmt_def *d = *t; d->name; d++)
			check_statement(d->name, d->sql, problems, cap);
}

static const struct db_stmt_def *const hot_tables[] = { intake_stmts, plan_stmts, callback_stmts,
	                                                  dispatch_stmts, replan_stmts, backlog_stmts, stock_stmts,
	                                                  feed_stmts, rescore_stmts, NULL };

static void test_hot_statements_use_their_keys(void)
{
	static char problems[65536];
	problems[0] = '\0';
	check_tables(hot_tables, problems, sizeof problems);
	if (problems[0])
		printf("\n%s", problems);
	CU_ASSERT_STRING_EQUAL(problems, "");
}

/* The check can fail: without order_lines(request_id) the callback's lock
 * reads every line of the store. */
static void test_without_the_request_index_it_fails(void)
{
	static char problems[65536];
	problems[0] = '\0';
	CU_ASSERT_FATAL(testdb_exec(db, "BEGIN", 0, NULL) == 0);
	CU_ASSERT_FATAL(testdb_exec(db, "DROP INDEX order_lines_request_idx", 0, NULL) == 0);
	const struct db_stmt_def *const callback_only[] = { callback_stmts, NULL };
	check_tables(callback_only, problems, sizeof problems);
	CU_ASSERT_FATAL(testdb_exec(db, "ROLLBACK", 0, NULL) == 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(problems, "callback_lock ("));
}

static int suite_init(void)
{
	if (testdb_create("dropship_plans", conninfo, sizeof conninfo) < 0 || ctl_rc(conninfo, "migrate", NULL) != 0)
		return -1;
	const char *pgbin = getenv("DROPSHIP_TEST_PGBIN");
	const char *root = getenv("DROPSHIP_TEST_ROOT");
	char psql[512], script[512];
	snprintf(psql, sizeof psql, "%s/psql", pgbin ? pgbin : "/usr/bin");
	snprintf(script, sizeof script, "%s/tests/scale/gen-orders.sql", root ? root : ".");
	const char *argv[] = { psql, "-X", "-q", "-v", "orders=" ORDERS, "-d", conninfo, "-f", script, NULL };
	char *err = NULL;
	int rc = proc_run(argv, NULL, NULL, &err);
	if (rc != 0)
		fprintf(stderr, "gen-orders.sql failed (%d): %s\n", rc, err ? err : "");
	free(err);
	if (rc != 0)
		return -1;
	db = testdb_connect(conninfo);
	return db ? 0 : -1;
}

static int suite_cleanup(void)
{
	if (db)
		PQfinish(db);
	return 0;
}

int main(void)
{
	static const struct harness_test tests[] = {
		{ "hot statements scan their tables by key, generic and custom plans",
		  test_hot_statements_use_their_keys },
		{ "without order_lines(request_id) the check fails", test_without_the_request_index_it_fails },
		{ NULL, NULL },
	};
	return harness_main("plans", suite_init, suite_cleanup, tests);
}

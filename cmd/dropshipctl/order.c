/* dropshipctl order show / list / reroute. show: one order as operators
 * read it — the same document as GET /v1/admin/orders/{id}
 * (internal/admin), printed as sections and tables, or as JSON with
 * --json. An order is named by dropship's id or by its store's own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "admin/admin.h"
#include "ctl.h"

/* A JSON scalar as text in buf: strings as they are, null as "". */
static const char *ctl_json_text(const json_t *v, char *buf, size_t cap)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v))
		snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, cap, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, cap, "%s", json_is_true(v) ? "yes" : "no");
	else
		buf[0] = '\0';
	return buf;
}

#define CTL_CELL 128

/* Prints the objects of arr as a table of the given keys under head. */
static int ctl_print_objects(const json_t *arr, const char *const *keys, const char *const *head,
                             int ncols, const char *indent)
{
	char cells[CTL_TABLE_MAX_COLS][CTL_CELL];
	const char *row[CTL_TABLE_MAX_COLS];
	struct ctl_table t = { .ncols = ncols, .head = head };
	size_t i;
	json_t *o;
	int rc = 0;
	json_array_foreach(arr, i, o) {
		for (int c = 0; c < ncols; c++)
			row[c] = ctl_json_text(json_object_get(o, keys[c]), cells[c], CTL_CELL);
		if ((rc = ctl_table_add(&t, row)) < 0)
			break;
	}
	if (rc == 0)
		ctl_table_print(&t, stdout, indent);
	ctl_table_free(&t);
	return rc;
}

/* "supplier unit_cost, ..." of a decision's candidates, with why an offer
 * was passed over; and, for decisions made on the supplier scorecard, each
 * one's expected unit cost and the rates it came from. */
static void ctl_candidates_text(const json_t *cands, char *buf, size_t cap)
{
	size_t i, n = 0;
	json_t *c;
	buf[0] = '\0';
	json_array_foreach(cands, i, c) {
		const char *why = json_string_value(json_object_get(c, "why_not"));
		const char *supplier = json_string_value(json_object_get(c, "supplier"));
		const char *cost = json_string_value(json_object_get(c, "unit_cost"));
		const char *exp = json_string_value(json_object_get(c, "expected_cost"));
		const char *acc = json_string_value(json_object_get(c, "acceptance_rate"));
		const char *ontime = json_string_value(json_object_get(c, "on_time_rate"));
		char scored[160] = "";
		if (exp && acc && ontime)
			snprintf(scored, sizeof scored, " [expected %s: accepts %.2f%%, on time %.2f%%%s]", exp,
			         strtod(acc, NULL), strtod(ontime, NULL),
			         json_is_true(json_object_get(c, "below_floor")) ? ", below floor" : "");
		int w = snprintf(buf + n, cap - n, "%s%s %s%s%s%s%s", i ? ", " : "",
		                 supplier ? supplier : "?", cost ? cost : "?", scored,
		                 why ? " (" : "", why ? why : "", why ? ")" : "");
		if (w < 0 || (size_t)w >= cap - n)
			break;
		n += (size_t)w;
	}
}

static void ctl_field(const char *label, const json_t *doc, const char *key)
{
	char buf[64];
	const char *v = ctl_json_text(json_object_get(doc, key), buf, sizeof buf);
	if (*v)
		printf("%-12s%s\n", label, v);
}

/* The requests of an order: each with its callbacks, our messages about it
 * and, for platform messages, every HTTP call made to the platform. */
static int ctl_print_requests(const json_t *reqs)
{
	static const char *const rkeys[] = { "request_id", "supplier", "status", "reason", "created_at",
	                                     "carrier", "tracking_number" };
	static const char *const rhead[] = { "REQUEST_ID", "SUPPLIER", "STATUS", "REASON", "CREATED_AT",
	                                     "CARRIER", "TRACKING" };
	static const char *const ekeys[] = { "received_at", "type", "from", "to", "occurred_at" };
	static const char *const ehead[] = { "RECEIVED_AT", "EVENT", "FROM", "TO", "OCCURRED_AT" };
	static const char *const xkeys[] = { "kind", "state", "attempts", "last_status", "last_error",
	                                     "next_attempt_at", "delivered_at" };
	static const char *const xhead[] = { "MESSAGE", "STATE", "ATTEMPTS", "LAST_STATUS", "LAST_ERROR",
	                                     "NEXT_ATTEMPT", "DELIVERED_AT" };
	static const char *const skeys[] = { "attempt", "step", "action", "method", "path", "status", "error",
	                                     "ref" };
	static const char *const shead[] = { "ATTEMPT", "STEP", "ACTION", "METHOD", "PATH", "STATUS", "ERROR",
	                                     "REF" };
	json_t *r;
	size_t i;
	puts("\nrequests");
	if (ctl_print_objects(reqs, rkeys, rhead, 7, "  ") < 0)
		return -1;
	json_array_foreach(reqs, i, r) {
		printf("\n  request %s (%s)\n", json_string_value(json_object_get(r, "request_id")),
		       json_string_value(json_object_get(r, "supplier")));
		json_t *events = json_object_get(r, "events");
		if (json_array_size(events) == 0)
			puts("    (no callbacks yet)");
		else if (ctl_print_objects(events, ekeys, ehead, 5, "    ") < 0)
			return -1;
		json_t *dels = json_object_get(r, "deliveries"), *x;
		if (ctl_print_objects(dels, xkeys, xhead, 7, "    ") < 0)
			return -1;
		size_t k;
		json_array_foreach(dels, k, x) {
			json_t *steps = json_object_get(x, "steps");
			if (json_array_size(steps) == 0)
				continue;
			printf("    %s: the platform's calls\n", json_string_value(json_object_get(x, "kind")));
			if (ctl_print_objects(steps, skeys, shead, 8, "      ") < 0)
				return -1;
		}
	}
	return 0;
}

/* The non-empty parts of the shipping address, comma-separated. */
static void ctl_print_address(const json_t *to)
{
	static const char *const keys[] = { "name", "line1", "line2", "postal_code", "city", "region",
	                                    "country", "phone" };
	char line[1024] = "";
	size_t n = 0;
	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		const char *v = json_string_value(json_object_get(to, keys[k]));
		if (v && *v && n < sizeof line)
			n += (size_t)snprintf(line + n, sizeof line - n, "%s%s", n ? ", " : "", v);
	}
	printf("%-12s%s\n", "ship to", n ? line : "(none)");
}

static int ctl_print_order(const json_t *doc)
{
	const json_t *cust = json_object_get(doc, "customer");
	printf("order %s  store %s  external id %s\n", json_string_value(json_object_get(doc, "order_id")),
	       json_string_value(json_object_get(doc, "store")),
	       json_string_value(json_object_get(doc, "external_id")));
	ctl_field("name", doc, "name");
	ctl_field("status", doc, "status");
	ctl_field("currency", doc, "currency");
	ctl_field("placed", doc, "placed_at");
	ctl_field("received", doc, "created_at");
	ctl_field("updated", doc, "updated_at");
	ctl_field("customer", cust, "name");
	ctl_field("email", cust, "email");
	ctl_print_address(json_object_get(doc, "ship_to"));

	static const char *const lkeys[] = { "line", "sku", "title", "quantity", "unit_price", "status",
	                                     "reason", "supplier", "unit_cost", "carrier", "tracking_number" };
	static const char *const lhead[] = { "LINE", "SKU", "TITLE", "QTY", "PRICE", "STATUS", "REASON",
	                                     "SUPPLIER", "UNIT_COST", "CARRIER", "TRACKING" };
	puts("\nlines");
	if (ctl_print_objects(json_object_get(doc, "lines"), lkeys, lhead, 11, "  ") < 0)
		return -1;

	/* Decisions: the candidates array is folded into one readable cell. */
	json_t *decs = json_object_get(doc, "routing_decisions");
	static const char *const dhead[] = { "LINE", "ATTEMPT", "POLICY", "SEARCH", "SUPPLIER", "REASON",
	                                     "DECIDED_AT", "CANDIDATES (landed unit cost)" };
	static const char *const dkeys[] = { "line", "attempt", "policy", "search", "supplier", "reason",
	                                     "decided_at" };
	struct ctl_table t = { .ncols = 8, .head = dhead };
	char cells[7][CTL_CELL], cand[4096];
	const char *row[8];
	size_t i;
	json_t *d;
	int rc = 0;
	json_array_foreach(decs, i, d) {
		for (int c = 0; c < 7; c++)
			row[c] = ctl_json_text(json_object_get(d, dkeys[c]), cells[c], CTL_CELL);
		ctl_candidates_text(json_object_get(d, "candidates"), cand, sizeof cand);
		row[7] = cand;
		if ((rc = ctl_table_add(&t, row)) < 0)
			break;
	}
	puts("\nrouting decisions");
	if (rc == 0)
		ctl_table_print(&t, stdout, "  ");
	ctl_table_free(&t);
	if (rc < 0)
		return -1;

	return ctl_print_requests(json_object_get(doc, "requests"));
}

/* An order as the operator names it: dropship's id, or the store's own. */
struct ctl_order_ref {
	const char *id;
	const char *store, *external;
};

/* Parses cmd's words: ID or --store CODE --external ID, and --json when
 * json is not NULL. Exactly one way of naming the order. */
static int ctl_order_ref_parse(int argc, char **argv, const char *cmd, struct ctl_order_ref *ref,
                               int *json)
{
	long long v;
	memset(ref, 0, sizeof *ref);
	for (int i = 0; i < argc; i++) {
		int m = json && strcmp(argv[i], "--json") == 0 ? (*json = 1) : 0;
		if (m == 0)
			m = ctl_opt(argc, argv, &i, "--store", &ref->store);
		if (m == 0)
			m = ctl_opt(argc, argv, &i, "--external", &ref->external);
		if (m < 0)
			return CTL_USAGE;
		if (m > 0)
			continue;
		if (argv[i][0] == '-' || ref->id)
			return ctl_bad_arg(cmd, argv[i]);
		ref->id = argv[i];
	}
	if (ref->id && (ref->store || ref->external))
		return ctl_usage_error("%s: give an ID or --store CODE --external ID, not both", cmd);
	if (!ref->id && !ref->store && !ref->external)
		return ctl_usage_error("%s: missing ID (the order id dropship gave, as in `" CTL_PROG
		                       " %s 42`, or --store CODE --external ID)", cmd, cmd);
	if (ref->id && admin_parse_order_id(ref->id, &v) < 0)
		return ctl_usage_error("%s: ID '%s' is not an order id (a whole number from 1)", cmd, ref->id);
	if (!ref->id && !ref->store)
		return ctl_usage_error("%s: --external needs --store CODE (external ids are per store)", cmd);
	if (!ref->id && !ref->external)
		return ctl_usage_error("%s: --store needs --external ID (the store's own order id)", cmd);
	if (ref->store && ctl_check_code("--store", ref->store) != CTL_OK)
		return CTL_USAGE;
	return CTL_OK;
}

/* Where an order was found. */
struct ctl_order_key {
	char id[24], store_id[24], status[24];
};

/* Finds the order: CTL_OK with key set, or CTL_FAIL after printing why. */
static int ctl_order_find(PGconn *conn, const char *cmd, const struct ctl_order_ref *ref,
                          struct ctl_order_key *key)
{
	PGresult *res;
	if (ref->id) {
		res = PQexecParams(conn, "SELECT id::text, store_id::text, status FROM orders"
		                         " WHERE id = $1::bigint", 1, NULL, &ref->id, NULL, NULL, 0);
	} else {
		int rc = ctl_check_exists(conn, cmd, "--store", "stores", "store", ref->store);
		if (rc != CTL_OK)
			return rc;
		const char *params[] = { ref->store, ref->external };
		res = PQexecParams(conn, "SELECT o.id::text, o.store_id::text, o.status FROM orders o"
		                         " JOIN stores s ON s.id = o.store_id"
		                         " WHERE s.code = $1 AND o.external_id = $2", 2, NULL, params, NULL,
		                   NULL, 0);
	}
	int rc = CTL_OK;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = ctl_pg_fail(conn, res, cmd);
	else if (PQntuples(res) == 0 && ref->id)
		rc = ctl_fail("%s: no order %s", cmd, ref->id);
	else if (PQntuples(res) == 0)
		rc = ctl_fail("%s: no order with external id '%s' in store '%s'", cmd, ref->external,
		              ref->store);
	else {
		snprintf(key->id, sizeof key->id, "%s", PQgetvalue(res, 0, 0));
		snprintf(key->store_id, sizeof key->store_id, "%s", PQgetvalue(res, 0, 1));
		snprintf(key->status, sizeof key->status, "%s", PQgetvalue(res, 0, 2));
	}
	PQclear(res);
	return rc;
}

int ctl_cmd_order_show(struct ctl *c, int argc, char **argv)
{
	struct ctl_order_ref ref;
	int as_json = 0;
	int rc = ctl_order_ref_parse(argc, argv, "order show", &ref, &as_json);
	if (rc != CTL_OK)
		return rc;
	PGconn *conn;
	if ((rc = ctl_connect(c, &conn)) != CTL_OK)
		return rc;
	struct ctl_order_key key;
	json_t *doc = NULL;
	PGresult *res = NULL;
	if ((rc = ctl_order_find(conn, "order show", &ref, &key)) != CTL_OK)
		goto cleanup;
	const char *params[] = { key.id };
	res = PQexecParams(conn, admin_order_sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = ctl_pg_fail(conn, res, "order show");
		goto cleanup;
	}
	if (PQntuples(res) == 0) {
		rc = ctl_fail("order show: no order %s", key.id);
		goto cleanup;
	}
	json_error_t jerr;
	doc = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
	if (!doc) {
		rc = ctl_fail("order show: unreadable document: %s", jerr.text);
		goto cleanup;
	}
	if (as_json) {
		if (json_dumpf(doc, stdout, JSON_INDENT(2)) < 0)
			rc = ctl_fail("order show: cannot write the output");
		putchar('\n');
	} else if (ctl_print_order(doc) < 0) {
		rc = ctl_fail("order show: out of memory");
	}
cleanup:
	json_decref(doc);
	PQclear(res);
	PQfinish(conn);
	return rc;
}

static const char *const ctl_order_statuses[] = {
	"received", "routed", "partially_routed", "needs_attention", "partially_shipped", "shipped",
	"delivered", "cancelled", NULL,
};

/* Newest first; filters are NULL when not given. */
static const char ctl_order_list_sql[] =
	"SELECT o.id::text AS order_id, s.code AS store, o.external_id, o.status,"
	" (SELECT count(*) FROM order_lines l WHERE l.store_id = o.store_id AND l.order_id = o.id)"
	"   AS lines,"
	" to_json(o.created_at) #>> '{}' AS created_at, to_json(o.updated_at) #>> '{}' AS updated_at"
	" FROM orders o JOIN stores s ON s.id = o.store_id"
	" WHERE ($1::text IS NULL OR s.code = $1) AND ($2::text IS NULL OR o.status = $2)"
	"   AND ($3::timestamptz IS NULL OR o.created_at >= $3)"
	"   AND ($4::interval IS NULL OR o.created_at >= now() - $4::interval)"
	" ORDER BY o.created_at DESC, o.id DESC LIMIT $5";

int ctl_cmd_order_list(struct ctl *c, int argc, char **argv)
{
	static const struct ctl_col cols[] = {
		{ "ID", "order_id", CTL_FMT_TEXT, 1 },
		{ "STORE", "store", CTL_FMT_TEXT, 0 },
		{ "EXTERNAL_ID", "external_id", CTL_FMT_TEXT, 0 },
		{ "STATUS", "status", CTL_FMT_TEXT, 0 },
		{ "LINES", "lines", CTL_FMT_TEXT, 1 },
		{ "CREATED", "created_at", CTL_FMT_TIME, 0 },
		{ "UPDATED", "updated_at", CTL_FMT_TIME, 0 },
	};
	struct ctl_filters f;
	int rc = ctl_parse_filters(argc, argv, "order list", "jsStl", &f);
	if (rc != CTL_OK)
		return rc;
	int known = !f.status;
	for (const char *const *s = ctl_order_statuses; !known && *s; s++)
		known = strcmp(*s, f.status) == 0;
	if (!known)
		return ctl_usage_error("--status must be one of received, routed, partially_routed, "
		                       "needs_attention, partially_shipped, shipped, delivered, cancelled "
		                       "(got '%s')", f.status);
	const char *params[] = { f.store, f.status, f.since.at, f.since.ago[0] ? f.since.ago : NULL, f.limit };
	const struct ctl_list l = { "order list", ctl_order_list_sql, 5, params, cols, sizeof cols / sizeof cols[0],
	                            "(no orders)" };
	return ctl_list_filtered(c, &f, &l);
}

#define CTL_REROUTE_WAIT_MS 10000
#define CTL_REROUTE_POLL_MS 100

/* The row dropshipd deletes once it has re-planned the order. */
static const char ctl_reroute_sql[] =
	"INSERT INTO replan_orders (store_id, order_id) VALUES ($1::bigint, $2::bigint)"
	" ON CONFLICT (store_id, order_id) DO UPDATE SET requested_at = now()";

/* Asks for a re-plan: the row, and the NOTIFY that wakes dropshipd,
 * delivered at COMMIT. */
static const char *const ctl_reroute_steps[] = {
	"BEGIN", ctl_reroute_sql, "NOTIFY dropship_replan", "COMMIT",
};

static double ctl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* 1 while the order's replan_orders row is there, 0 once gone, -1 on error. */
static int ctl_reroute_pending(PGconn *conn, const struct ctl_order_key *key)
{
	const char *params[] = { key->store_id, key->id };
	PGresult *res = PQexecParams(conn, "SELECT 1 FROM replan_orders WHERE store_id = $1::bigint"
	                                   " AND order_id = $2::bigint", 2, NULL, params, NULL, NULL, 0);
	int rc = PQresultStatus(res) != PGRES_TUPLES_OK ? (ctl_pg_fail(conn, res, "order reroute"), -1)
	                                                : PQntuples(res) > 0;
	PQclear(res);
	return rc;
}

/* The order's lines as they are now. */
static int ctl_reroute_lines(PGconn *conn, const struct ctl_order_key *key)
{
	static const struct ctl_col cols[] = {
		{ "LINE", "line_no", CTL_FMT_TEXT, 1 },
		{ "SKU", "sku", CTL_FMT_TEXT, 0 },
		{ "QTY", "quantity", CTL_FMT_TEXT, 1 },
		{ "STATUS", "status", CTL_FMT_TEXT, 0 },
		{ "REASON", "reason", CTL_FMT_TEXT, 0 },
		{ "SUPPLIER", "supplier", CTL_FMT_TEXT, 0 },
		{ "REQUEST_ID", "request_id", CTL_FMT_TEXT, 0 },
	};
	const char *params[] = { key->store_id, key->id };
	PGresult *res = PQexecParams(conn,
		"SELECT o.status AS order_status, l.line_no, l.sku, l.quantity, l.status, l.reason,"
		" sp.code AS supplier, l.request_id::text AS request_id"
		" FROM orders o JOIN order_lines l ON l.store_id = o.store_id AND l.order_id = o.id"
		" LEFT JOIN suppliers sp ON sp.id = l.supplier_id"
		" WHERE o.store_id = $1::bigint AND o.id = $2::bigint ORDER BY l.line_no",
		2, NULL, params, NULL, NULL, 0);
	int rc;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = ctl_pg_fail(conn, res, "order reroute");
	} else {
		printf("order %s re-planned%s%s\n", key->id, PQntuples(res) ? "; now " : "",
		       PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
		rc = ctl_print_columns(res, cols, sizeof cols / sizeof cols[0], "  ");
	}
	PQclear(res);
	return rc;
}

int ctl_cmd_order_reroute(struct ctl *c, int argc, char **argv)
{
	struct ctl_order_ref ref;
	int rc = ctl_order_ref_parse(argc, argv, "order reroute", &ref, NULL);
	if (rc != CTL_OK)
		return rc;
	PGconn *conn;
	if ((rc = ctl_connect(c, &conn)) != CTL_OK)
		return rc;
	struct ctl_order_key key;
	if ((rc = ctl_order_find(conn, "order reroute", &ref, &key)) != CTL_OK)
		goto cleanup;
	if (strcmp(key.status, "shipped") == 0 || strcmp(key.status, "delivered") == 0 ||
	    strcmp(key.status, "cancelled") == 0) {
		rc = ctl_fail("order reroute: order %s is %s: nothing is left to route", key.id, key.status);
		goto cleanup;
	}
	for (size_t s = 0; rc == CTL_OK && s < sizeof ctl_reroute_steps / sizeof ctl_reroute_steps[0]; s++) {
		const char *params[] = { key.store_id, key.id };
		int np = ctl_reroute_steps[s] == ctl_reroute_sql ? 2 : 0;
		PGresult *res = PQexecParams(conn, ctl_reroute_steps[s], np, NULL, np ? params : NULL, NULL,
		                             NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			rc = ctl_pg_fail(conn, res, "order reroute");
		PQclear(res);
	}
	if (rc != CTL_OK)
		goto cleanup;
	fprintf(stderr, CTL_PROG ": order %s queued for re-planning; waiting for dropshipd...\n", key.id);
	int pending = 1;
	double deadline = ctl_now_ms() + CTL_REROUTE_WAIT_MS;
	for (;;) {
		if ((pending = ctl_reroute_pending(conn, &key)) <= 0 || ctl_now_ms() >= deadline)
			break;
		struct timespec nap = { 0, CTL_REROUTE_POLL_MS * 1000000L };
		nanosleep(&nap, NULL);
	}
	if (pending < 0)
		rc = CTL_FAIL;
	else if (pending)
		/* The row stays: a dropshipd that starts later re-plans the order. */
		rc = ctl_fail("order reroute: order %s was not re-planned within %d s: no dropshipd "
		              "re-planned it; is dropshipd running? (it stays queued)", key.id,
		              CTL_REROUTE_WAIT_MS / 1000);
	else
		rc = ctl_reroute_lines(conn, &key);
cleanup:
	PQfinish(conn);
	return rc;
}

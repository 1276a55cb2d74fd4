/* dropshipctl order show: one order as operators read it — the same
 * document as GET /v1/admin/orders/{id} (internal/admin), printed as
 * sections and tables, or as JSON with --json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* "supplier unit_cost, ..." of a decision's candidates, with why an offer was passed over. */
static void ctl_candidates_text(const json_t *cands, char *buf, size_t cap)
{
	size_t i, n = 0;
	json_t *c;
	buf[0] = '\0';
	json_array_foreach(cands, i, c) {
		const char *why = json_string_value(json_object_get(c, "why_not"));
		const char *supplier = json_string_value(json_object_get(c, "supplier"));
		const char *cost = json_string_value(json_object_get(c, "unit_cost"));
		int w = snprintf(buf + n, cap - n, "%s%s %s%s%s%s", i ? ", " : "",
		                 supplier ? supplier : "?", cost ? cost : "?",
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
	char cells[7][CTL_CELL], cand[1024];
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
	json_t *reqs = json_object_get(doc, "requests"), *r;
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
		if (ctl_print_objects(json_object_get(r, "deliveries"), xkeys, xhead, 7, "    ") < 0)
			return -1;
	}
	return 0;
}

int ctl_cmd_order_show(struct ctl *c, int argc, char **argv)
{
	const char *id = NULL;
	int as_json = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			as_json = 1;
		else if (argv[i][0] == '-' || id)
			return ctl_bad_arg("order show", argv[i]);
		else
			id = argv[i];
	}
	long long v;
	if (!id)
		return ctl_usage_error("order show: missing ID (the order id dropship gave, as in "
		                       "`" CTL_PROG " order show 42`)");
	if (admin_parse_order_id(id, &v) < 0)
		return ctl_usage_error("order show: ID '%s' is not an order id (a whole number from 1)", id);
	PGconn *conn;
	int rc = ctl_connect(c, &conn);
	if (rc != CTL_OK)
		return rc;
	const char *params[] = { id };
	json_t *doc = NULL;
	PGresult *res = PQexecParams(conn, admin_order_sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = ctl_pg_fail(conn, res, "order show");
		goto cleanup;
	}
	if (PQntuples(res) == 0) {
		rc = ctl_fail("order show: no order %s", id);
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

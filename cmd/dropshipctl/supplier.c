/* dropshipctl supplier add / list / disable / enable / show. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define CTL_PRIORITY_MAX 1000000

struct ctl_supplier_opts {
	const char *code;
	const char *endpoint;          /* NULL = keep */
	struct ctl_secrets secrets;
	const char *priority;          /* as given */
	const char *active;            /* "true" or "false" */
	const char *accept_within;     /* as given, e.g. "24h" */
	const char *ship_within;
	char accept_iv[32];            /* the same as interval input: "86400 seconds" */
	char ship_iv[32];
	int update;                    /* --update */
};

/* Everything that can be checked without the database. */
static int ctl_supplier_validate(struct ctl_supplier_opts *o)
{
	int rc = CTL_OK;
	if (o->endpoint)
		rc = ctl_check_url("--endpoint", o->endpoint);
	for (size_t i = 0; rc == CTL_OK && i < o->secrets.n; i++)
		rc = ctl_check_secret("native", i + 1, o->secrets.v[i]);
	if (rc == CTL_OK && o->priority)
		rc = ctl_check_int("--priority", o->priority, 0, CTL_PRIORITY_MAX);
	if (rc == CTL_OK && o->active && strcmp(o->active, "true") != 0 &&
	    strcmp(o->active, "false") != 0)
		rc = ctl_usage_error("--active must be true or false (got '%s')", o->active);
	if (rc == CTL_OK && o->accept_within)
		rc = ctl_check_duration("--accept-within", o->accept_within, o->accept_iv,
		                        sizeof o->accept_iv);
	if (rc == CTL_OK && o->ship_within)
		rc = ctl_check_duration("--ship-within", o->ship_within, o->ship_iv, sizeof o->ship_iv);
	return rc;
}

static int ctl_supplier_parse(int argc, char **argv, struct ctl_supplier_opts *o)
{
	memset(o, 0, sizeof *o);
	const struct ctl_optdef opts[] = {
		{ "--endpoint", &o->endpoint },
		{ "--priority", &o->priority },
		{ "--active", &o->active },
		{ "--accept-within", &o->accept_within },
		{ "--ship-within", &o->ship_within },
		{ NULL, NULL },
	};
	int rc = ctl_parse_add(argc, argv, "supplier", "supplier add CODE --endpoint URL --secret S ...",
	                       opts, &o->code, &o->secrets, &o->update);
	return rc == CTL_OK ? ctl_supplier_validate(o) : rc;
}

/* A new supplier needs what has no default. */
static int ctl_supplier_check_stored(const void *arg, const char *stored)
{
	const struct ctl_supplier_opts *o = arg;
	if (stored)
		return CTL_OK;
	if (!o->endpoint)
		return ctl_usage_error("supplier add: --endpoint is required to create supplier '%s'",
		                       o->code);
	if (o->secrets.n == 0)
		return ctl_usage_error("supplier add: --secret is required to create supplier '%s'",
		                       o->code);
	return CTL_OK;
}

int ctl_cmd_supplier_add(struct ctl *c, int argc, char **argv)
{
	struct ctl_supplier_opts o;
	int rc = ctl_supplier_parse(argc, argv, &o);
	if (rc != CTL_OK)
		return rc;

	struct ctl_upsert u = { .table = "suppliers", .noun = "supplier", .code = o.code,
	                        .secrets = &o.secrets, .stored_col = "code",
	                        .check = ctl_supplier_check_stored, .arg = &o, .update = o.update };
	ctl_upsert_set(&u, "endpoint", o.endpoint);
	ctl_upsert_set(&u, "priority", o.priority);
	ctl_upsert_set(&u, "active", o.active);
	ctl_upsert_set(&u, "accept_within", o.accept_within ? o.accept_iv : NULL);
	ctl_upsert_set(&u, "ship_within", o.ship_within ? o.ship_iv : NULL);
	return ctl_upsert_row(c, &u);
}

/* An interval's seconds (column of the lateral `e` below) the way
 * --accept-within takes them: "1d12h", "90m" comes back as "1h30m". */
#define CTL_DURATION_SQL(secs)                                                              \
	"coalesce(nullif(concat(nullif(" secs " / 86400, 0) || 'd', nullif(" secs " % 86400 / "  \
	"3600, 0) || 'h', nullif(" secs " % 3600 / 60, 0) || 'm', nullif(" secs " % 60, 0) || "  \
	"'s'), ''), '0s')"

int ctl_cmd_supplier_list(struct ctl *c, int argc, char **argv)
{
	static const char *const head[] = { "CODE", "ENDPOINT", "PRIORITY", "ACTIVE", "ACCEPT_WITHIN",
	                                    "SHIP_WITHIN", "SECRETS", "OFFERS", "CREATED_AT" };
	return ctl_list(c, argc, argv, "supplier list",
	                "SELECT s.code, s.endpoint, s.priority::text, s.active::text,"
	                " " CTL_DURATION_SQL("e.accept") ", " CTL_DURATION_SQL("e.ship") ","
	                " cardinality(s.secrets)::text,"
	                " (SELECT count(*) FROM offers o WHERE o.supplier_id = s.id)::text,"
	                " to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
	                " FROM suppliers s CROSS JOIN LATERAL"
	                " (SELECT extract(epoch FROM s.accept_within)::bigint AS accept,"
	                "         extract(epoch FROM s.ship_within)::bigint AS ship) e"
	                " ORDER BY s.code",
	                head, sizeof head / sizeof head[0],
	                "(no suppliers; add one with `" CTL_PROG " supplier add CODE --endpoint URL "
	                "--secret S`)");
}

int ctl_cmd_supplier_disable(struct ctl *c, int argc, char **argv)
{
	return ctl_set_active(c, argc, argv, "suppliers", "supplier", 0);
}

int ctl_cmd_supplier_enable(struct ctl *c, int argc, char **argv)
{
	return ctl_set_active(c, argc, argv, "suppliers", "supplier", 1);
}

/* The supplier's settings and its scorecard row (reporting.supplier_scorecard). */
static const char ctl_supplier_show_sql[] =
	"SELECT s.code, s.endpoint, s.priority, s.active, " CTL_DURATION_SQL("e.accept") " AS accept_within,"
	" " CTL_DURATION_SQL("e.ship") " AS ship_within,"
	" (SELECT count(*) FROM offers o WHERE o.supplier_id = s.id) AS offers,"
	" sc.requests, sc.answered, sc.accepted, sc.rejected, sc.failed, sc.judged, sc.on_time,"
	" sc.acceptance_rate, sc.raw_acceptance_rate, sc.rejection_rate, sc.rejection_rate_by_reason,"
	" sc.on_time_rate, sc.raw_on_time_rate, sc.delivery_failure_rate, sc.median_hours_to_accept,"
	" sc.median_hours_to_ship, sc.risk, sc.prior_weight,"
	" to_json(sc.window_start) #>> '{}' AS window_start, to_json(sc.refreshed_at) #>> '{}' AS refreshed_at,"
	" extract(epoch FROM now() - sc.refreshed_at)::bigint AS _refreshed_ago"
	" FROM suppliers s CROSS JOIN LATERAL"
	" (SELECT extract(epoch FROM s.accept_within)::bigint AS accept,"
	"         extract(epoch FROM s.ship_within)::bigint AS ship) e"
	" LEFT JOIN reporting.supplier_scorecard sc ON sc.supplier = s.code"
	" WHERE s.code = $1";

/* Column name's value of row 0, or dflt when NULL. */
static const char *ctl_col(const PGresult *res, const char *name, const char *dflt)
{
	int c = PQfnumber(res, name);
	return c < 0 || PQgetisnull(res, 0, c) ? dflt : PQgetvalue(res, 0, c);
}

static void ctl_print_scorecard(const PGresult *res)
{
	printf("supplier %s  %s  priority %s  accept within %s  ship within %s  offers %s\n",
	       ctl_col(res, "code", ""), ctl_col(res, "active", "f")[0] == 't' ? "active" : "disabled",
	       ctl_col(res, "priority", ""), ctl_col(res, "accept_within", ""), ctl_col(res, "ship_within", ""),
	       ctl_col(res, "offers", "0"));
	printf("endpoint %s\n\n", ctl_col(res, "endpoint", ""));
	if (!ctl_col(res, "refreshed_at", NULL)) {
		puts("scorecard: not counted yet (dropshipd counts it every [score] refresh_ms); routing takes\n"
		     "the prior's rates meanwhile");
		return;
	}
	char ago[32];
	ctl_age_text(strtoll(ctl_col(res, "_refreshed_ago", "0"), NULL, 10), ago, sizeof ago);
	printf("scorecard: requests created since %.19sZ, counted %.19sZ (%s ago)\n",
	       ctl_col(res, "window_start", ""), ctl_col(res, "refreshed_at", ""), ago);
	printf("  %-22s %s\n", "requests", ctl_col(res, "requests", "0"));
	printf("  %-22s %s %%  (raw %s %%: %s accepted of %s answered; prior worth %s requests)\n",
	       "acceptance rate", ctl_col(res, "acceptance_rate", "-"), ctl_col(res, "raw_acceptance_rate", "-"),
	       ctl_col(res, "accepted", "0"), ctl_col(res, "answered", "0"), ctl_col(res, "prior_weight", "0"));
	printf("  %-22s %s %%  (%s)\n", "rejection rate", ctl_col(res, "rejection_rate", "-"),
	       ctl_col(res, "rejection_rate_by_reason", "none"));
	printf("  %-22s %s %%  (%s requests)\n", "delivery failure rate", ctl_col(res, "delivery_failure_rate", "-"),
	       ctl_col(res, "failed", "0"));
	printf("  %-22s %s %%  (raw %s %%: %s of %s shipped within ship_within)\n", "on-time rate",
	       ctl_col(res, "on_time_rate", "-"), ctl_col(res, "raw_on_time_rate", "-"), ctl_col(res, "on_time", "0"),
	       ctl_col(res, "judged", "0"));
	printf("  %-22s %s h\n", "median to accept", ctl_col(res, "median_hours_to_accept", "-"));
	printf("  %-22s %s h\n", "median to ship", ctl_col(res, "median_hours_to_ship", "-"));
	printf("  %-22s %s %%  (rejected or late: what balanced prices)\n", "risk", ctl_col(res, "risk", "-"));
}

int ctl_cmd_supplier_show(struct ctl *c, int argc, char **argv)
{
	const char *code = NULL;
	int json = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (argv[i][0] == '-' || code)
			return ctl_bad_arg("supplier show", argv[i]);
		else
			code = argv[i];
	}
	if (!code)
		return ctl_usage_error("supplier show: missing CODE (as in `" CTL_PROG " supplier show acme`)");
	if (ctl_check_code("supplier show", code) != CTL_OK)
		return CTL_USAGE;
	PGconn *conn;
	int rc = ctl_connect(c, &conn);
	if (rc != CTL_OK)
		return rc;
	const char *params[] = { code };
	PGresult *res = PQexecParams(conn, ctl_supplier_show_sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = ctl_pg_fail(conn, res, "supplier show");
	else if (PQntuples(res) == 0)
		rc = ctl_fail("supplier show: no supplier '%s'", code);
	else if (json)
		rc = ctl_json_print_row(res, 0, stdout) == 0 ? CTL_OK
		     : ctl_fail("supplier show: cannot write the output");
	else
		ctl_print_scorecard(res);
	PQclear(res);
	PQfinish(conn);
	return rc;
}

/* dropshipctl report: the views of the reporting schema, as an aligned
 * table for people or RFC 4180 CSV for programs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const char ctl_views_sql[] =
	"SELECT c.relname, coalesce(obj_description(c.oid, 'pg_class'), '')"
	"  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	" WHERE n.nspname = 'reporting' AND c.relkind IN ('v', 'm')"
	" ORDER BY c.relname";

/* Numbers read better right-aligned: int2, int4, int8, float4, float8, numeric. */
static int ctl_is_numeric_type(Oid type)
{
	return type == 21 || type == 23 || type == 20 || type == 700 || type == 701 || type == 1700;
}

static int ctl_report_list(PGresult *views)
{
	static const char *const head[] = { "REPORT", "DESCRIPTION" };
	struct ctl_table t = { .ncols = 2, .head = head };
	if (PQntuples(views) == 0) {
		puts("(no reports: run `" CTL_PROG " migrate` to create the reporting views)");
		return CTL_OK;
	}
	int rc = CTL_OK;
	if (ctl_table_add_result(&t, views) < 0)
		rc = ctl_fail("report: out of memory");
	else
		ctl_table_print(&t, stdout, "");
	ctl_table_free(&t);
	if (rc == CTL_OK)
		puts("\nprint one with: " CTL_PROG " report NAME [--csv]");
	return rc;
}

/* CSV is streamed a row at a time (single-row mode): a row-level view of
 * millions of rows never has to fit in memory. */
static int ctl_report_csv(PGconn *conn, const char *name, const char *sql)
{
	if (!PQsendQuery(conn, sql) || !PQsetSingleRowMode(conn))
		return ctl_pg_fail(conn, NULL, name);
	int rc = CTL_OK, header = 1;
	PGresult *res;
	while ((res = PQgetResult(conn))) {
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
			/* The final TUPLES_OK has no rows but still names the columns. */
			if (rc == CTL_OK && (header || PQntuples(res) > 0)) {
				ctl_csv_print(res, stdout, header);
				header = 0;
			}
		} else if (rc == CTL_OK) {
			rc = ctl_pg_fail(conn, res, name);
		}
		PQclear(res);
	}
	return rc;
}

static int ctl_report_table(PGconn *conn, const char *name, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		int rc = ctl_pg_fail(conn, res, name);
		PQclear(res);
		return rc;
	}
	int ncols = PQnfields(res);
	if (ncols > CTL_TABLE_MAX_COLS)
		ncols = CTL_TABLE_MAX_COLS;
	const char *head[CTL_TABLE_MAX_COLS];
	int right[CTL_TABLE_MAX_COLS];
	for (int c = 0; c < ncols; c++) {
		head[c] = PQfname(res, c);
		right[c] = ctl_is_numeric_type(PQftype(res, c));
	}
	struct ctl_table t = { .ncols = ncols, .head = head, .right = right };
	int rc = CTL_OK;
	if (ctl_table_add_result(&t, res) < 0) {
		rc = ctl_fail("report: out of memory");
	} else {
		ctl_table_print(&t, stdout, "");
		printf("(%d row%s)\n", PQntuples(res), PQntuples(res) == 1 ? "" : "s");
	}
	ctl_table_free(&t);
	PQclear(res);
	return rc;
}

int ctl_cmd_report(struct ctl *c, int argc, char **argv)
{
	const char *name = NULL;
	int csv = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--csv") == 0)
			csv = 1;
		else if (argv[i][0] == '-' || name)
			return ctl_bad_arg("report", argv[i]);
		else
			name = argv[i];
	}
	PGconn *conn;
	int rc = ctl_connect(c, &conn);
	if (rc != CTL_OK)
		return rc;
	PGresult *views = PQexec(conn, ctl_views_sql), *res = NULL;
	char *ident = NULL;
	if (PQresultStatus(views) != PGRES_TUPLES_OK) {
		rc = ctl_pg_fail(conn, views, "report");
		goto cleanup;
	}
	if (!name) {
		rc = ctl_report_list(views);
		goto cleanup;
	}
	/* Only a view of the reporting schema may be named: the name becomes SQL text. */
	int known = 0;
	char names[1024] = "";
	for (int r = 0; r < PQntuples(views); r++) {
		const char *v = PQgetvalue(views, r, 0);
		known |= strcmp(v, name) == 0;
		size_t n = strlen(names);
		snprintf(names + n, sizeof names - n, "%s%s", n ? ", " : "", v);
	}
	if (!known) {
		rc = ctl_usage_error("report: no report named '%s' (%s)", name,
		                     names[0] ? names : "none: run `" CTL_PROG " migrate`");
		goto cleanup;
	}
	ident = PQescapeIdentifier(conn, name, strlen(name));
	char sql[512];
	snprintf(sql, sizeof sql, "SELECT * FROM reporting.%s", ident ? ident : "\"\"");
	/* A report is read-only whatever the role running it may do. */
	res = PQexec(conn, "SET default_transaction_read_only = on");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		rc = ctl_pg_fail(conn, res, name);
		goto cleanup;
	}
	rc = csv ? ctl_report_csv(conn, name, sql) : ctl_report_table(conn, name, sql);
	if (fflush(stdout) != 0)
		rc = ctl_fail("report: cannot write the output");
cleanup:
	PQfreemem(ident);
	PQclear(res);
	PQclear(views);
	PQfinish(conn);
	return rc;
}

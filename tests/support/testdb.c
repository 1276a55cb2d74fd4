#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "support/testdb.h"

/* initdb in .ci/pg.sh makes "postgres" the superuser, whoever runs it. */
#define TESTDB_USER "postgres"

/* Socket folder (symlinks resolved: socket paths are short) and port. */
static int testdb_server(char *dir, size_t cap, const char **port)
{
	const char *pgdir = getenv("DROPSHIP_TEST_PGDIR");
	char real[PATH_MAX];
	if (!pgdir || !*pgdir) {
		fprintf(stderr, "testdb: DROPSHIP_TEST_PGDIR is not set (run through tests/run.sh, "
		        "or see .ci/pg.sh)\n");
		return -1;
	}
	snprintf(dir, cap, "%s", realpath(pgdir, real) ? real : pgdir);
	*port = getenv("DROPSHIP_PG_PORT");
	if (!*port || !**port)
		*port = "5432";
	return 0;
}

int testdb_create(const char *name, char *conninfo, size_t cap)
{
	char dir[PATH_MAX], admin[PATH_MAX + 128], sql[512];
	const char *port;
	int rc = -1;
	char *ident = NULL;
	if (testdb_server(dir, sizeof dir, &port) < 0)
		return -1;
	/* Quiet: "database ... does not exist, skipping" on every first run. */
	snprintf(admin, sizeof admin, "host=%s port=%s dbname=postgres user=" TESTDB_USER
	         " options='-c client_min_messages=warning'", dir, port);
	PGconn *conn = PQconnectdb(admin);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "testdb: cannot connect to %s: %s", admin, PQerrorMessage(conn));
		goto cleanup;
	}
	/* A name is an identifier, not a value: it cannot be a bound parameter. */
	ident = PQescapeIdentifier(conn, name, strlen(name));
	if (!ident) {
		fprintf(stderr, "testdb: bad database name %s: %s", name, PQerrorMessage(conn));
		goto cleanup;
	}
	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", ident);
	if (testdb_exec(conn, sql, 0, NULL) < 0)
		goto cleanup;
	snprintf(sql, sizeof sql, "CREATE DATABASE %s", ident);
	if (testdb_exec(conn, sql, 0, NULL) < 0)
		goto cleanup;
	snprintf(conninfo, cap, "host=%s port=%s dbname=%s user=" TESTDB_USER, dir, port, name);
	rc = 0;
cleanup:
	PQfreemem(ident);
	PQfinish(conn);
	return rc;
}

PGconn *testdb_connect(const char *conninfo)
{
	PGconn *conn = PQconnectdb(conninfo);
	if (PQstatus(conn) == CONNECTION_OK)
		return conn;
	fprintf(stderr, "testdb: cannot connect to %s: %s", conninfo, PQerrorMessage(conn));
	CU_FAIL("testdb_connect: cannot connect (see stderr)");
	PQfinish(conn);
	return NULL;
}

/* Runs sql; returns the result when it succeeded, else prints and NULL. */
static PGresult *testdb_query(PGconn *conn, const char *sql, int nparams,
                              const char *const *params)
{
	if (!conn)
		return NULL;
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	fprintf(stderr, "testdb: %s\n  failed: %s", sql, PQerrorMessage(conn));
	PQclear(res);
	return NULL;
}

char *testdb_value(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = testdb_query(conn, sql, nparams, params);
	char *v = NULL;
	if (res && PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
		v = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return v;
}

long testdb_count(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	char *v = testdb_value(conn, sql, nparams, params);
	long n = -1;
	if (v) {
		char *end;
		n = strtol(v, &end, 10);
		if (end == v || *end != '\0')
			n = -1;
	}
	free(v);
	return n;
}

int testdb_exec(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = testdb_query(conn, sql, nparams, params);
	PQclear(res);
	return res ? 0 : -1;
}

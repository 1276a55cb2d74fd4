/* testdb: databases on the throwaway PostgreSQL cluster of the end-to-end
 * tests (tests/run.sh starts it with .ci/pg.sh; DROPSHIP_TEST_PGDIR is its
 * socket folder, DROPSHIP_PG_PORT its port, default 5432). Blocking libpq. */
#ifndef DROPSHIP_TEST_TESTDB_H
#define DROPSHIP_TEST_TESTDB_H
#include <stddef.h>
#include <libpq-fe.h>

/* Drops database name if it exists (closing its sessions) and creates it
 * empty; writes "host=DIR port=PORT dbname=NAME user=postgres" into
 * conninfo. Returns 0, or -1 after printing why on stderr. */
int testdb_create(const char *name, char *conninfo, size_t cap);

/* Connects, or records a CUnit failure, prints why and returns NULL.
 * Close with PQfinish. */
PGconn *testdb_connect(const char *conninfo);

/* First column of the first row of a query with text parameters, as a
 * malloc'd string the caller frees; NULL when there is no row, the value
 * is NULL, or the query failed (printed on stderr). */
char *testdb_value(PGconn *conn, const char *sql, int nparams, const char *const *params);

/* The first column of the first row as an integer (e.g. SELECT count(*)),
 * or -1 when there is none or the query failed. */
long testdb_count(PGconn *conn, const char *sql, int nparams, const char *const *params);

/* Runs a statement. Returns 0, or -1 after printing PostgreSQL's message. */
int testdb_exec(PGconn *conn, const char *sql, int nparams, const char *const *params);

#endif

/* migrate: applies migrations/NNNN_name.sql files to PostgreSQL, each once
 * and in order, then re-applies the view files of sql/. Uses blocking libpq:
 * this is for dropshipctl, never for the server's event loop. */
#ifndef DROPSHIP_MIGRATE_H
#define DROPSHIP_MIGRATE_H
#include <stddef.h>
#include <stdio.h>
#include <libpq-fe.h>

/* Takes a session advisory lock (concurrent runs wait for each other),
 * creates schema_migrations if missing, refuses to run when an applied file
 * changed or a recorded version has no file in dir, then runs every pending
 * file in its own transaction and records it. Afterwards, when sql_dir is
 * not NULL, runs every sql_dir/ *.sql file in name order, all in one
 * transaction (views, recreated on every run). Progress lines ("applied
 * 0001_x.sql", "up to date (N migrations)") go to out, which may be NULL.
 * Returns the number of migrations applied, or -1 with a message naming
 * the file (and line, when PostgreSQL reports a position) in err. */
int migrate_run(PGconn *conn, const char *dir, const char *sql_dir, FILE *out,
                char *err, size_t errlen);

/* The newest version recorded in schema_migrations (e.g. "0011"), or ""
 * when nothing is: no such table, or an empty one. 0, or -1 with err. */
int migrate_applied_version(PGconn *conn, char *out, size_t cap, char *err, size_t errlen);

#endif

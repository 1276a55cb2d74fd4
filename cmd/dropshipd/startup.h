/* The database check dropshipd makes at start, and again until the
 * database answers: reachable, and at the schema version this binary was
 * built for (the newest file of migrations/). Blocking libpq, on the main
 * thread only: its loop serves nothing, only signals and this timer. */
#ifndef DROPSHIPD_STARTUP_H
#define DROPSHIPD_STARTUP_H

enum startup_db {
	STARTUP_DB_READY,        /* reachable and at this binary's schema */
	STARTUP_DB_UNREACHABLE,  /* try again in delay_ms */
	STARTUP_DB_WRONG_SCHEMA, /* not migrated, or newer than the binary: stop */
};

struct startup_check {
	const char *url;          /* [database] url */
	const char *config_path;  /* named in the "run dropshipctl" hint */
	int attempts;
	int delay_ms;             /* before the next attempt (backoff, 1 s to 30 s) */
	char last_error[512];     /* the failure last logged: a repeat is not */
};

/* The schema version this binary needs, e.g. "0011". */
const char *startup_schema_version(void);

/* One attempt. Logs the first failure of each kind (a changed message),
 * the recovery, and a wrong schema with what to run. */
enum startup_db startup_check_db(struct startup_check *sc);

#endif

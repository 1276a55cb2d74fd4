#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "log/log.h"
#include "migrate/migrate.h"
#include "startup.h"

#ifndef DROPSHIP_SCHEMA_VERSION
#error "the Makefile defines DROPSHIP_SCHEMA_VERSION from migrations/"
#endif

#define STARTUP_MAX_DELAY_MS 30000

const char *startup_schema_version(void)
{
	return DROPSHIP_SCHEMA_VERSION;
}

static enum startup_db startup_unreachable(struct startup_check *sc, const char *why)
{
	char line[sizeof sc->last_error], q[sizeof line + 64];
	snprintf(line, sizeof line, "%s", why);
	sc->delay_ms = sc->delay_ms ? sc->delay_ms * 2 : 1000;
	if (sc->delay_ms > STARTUP_MAX_DELAY_MS)
		sc->delay_ms = STARTUP_MAX_DELAY_MS;
	if (strcmp(line, sc->last_error) != 0) {
		log_warn("database unreachable: answering 503 until it is back, retrying", "attempt=%d error=%s",
		         sc->attempts, log_quote(q, sizeof q, line));
		snprintf(sc->last_error, sizeof sc->last_error, "%s", line);
	}
	return STARTUP_DB_UNREACHABLE;
}

enum startup_db startup_check_db(struct startup_check *sc)
{
	sc->attempts++;
	/* Before the URL, so a connect_timeout in the URL wins. */
	const char *keys[] = { "connect_timeout", "fallback_application_name", "dbname", NULL };
	const char *vals[] = { "5", "dropshipd", sc->url, NULL };
	PGconn *pg = PQconnectdbParams(keys, vals, 1);
	if (!pg)
		return startup_unreachable(sc, "out of memory");
	enum startup_db rc;
	if (PQstatus(pg) != CONNECTION_OK) {
		rc = startup_unreachable(sc, PQerrorMessage(pg));
		goto done;
	}
	char have[64], err[512], line[512], q[600];
	if (migrate_applied_version(pg, have, sizeof have, err, sizeof err) < 0) {
		rc = startup_unreachable(sc, err);
		goto done;
	}
	const char *need = DROPSHIP_SCHEMA_VERSION;
	int cmp = strcmp(have, need);
	if (cmp == 0) {
		if (sc->last_error[0])
			log_info("database reachable", "attempts=%d schema=%s", sc->attempts, have);
		rc = STARTUP_DB_READY;
		goto done;
	}
	if (cmp < 0) {
		snprintf(line, sizeof line, "run `dropshipctl -c %s migrate`", sc->config_path);
		log_error(have[0] ? "the database schema is older than this dropshipd"
		                  : "the database has no dropship schema",
		          "schema=%s needs=%s fix=%s", have[0] ? have : "none", need, log_quote(q, sizeof q, line));
	} else {
		log_error("the database schema is newer than this dropshipd: run the dropshipd that migrated it",
		          "schema=%s needs=%s", have, need);
	}
	rc = STARTUP_DB_WRONG_SCHEMA;
done:
	PQfinish(pg);
	return rc;
}

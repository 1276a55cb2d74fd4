/* dropshipctl outbox list / retry: the outbound messages (fulfillment
 * requests, cancellations, store notifications) as the dispatcher keeps
 * them, and failed ones put back in its queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "ctl.h"

/* Newest first. Filters are NULL when not given; a custom plan per run
 * drops them, so --failed reads the index of failed messages. */
static const char ctl_outbox_list_sql[] =
	"SELECT x.id::text AS id, x.kind, coalesce(sp.code, 'store:' || st.code) AS target,"
	" sp.code AS supplier, st.code AS store, x.request_id::text AS request_id, x.state,"
	" x.attempts,"
	" CASE WHEN x.state = 'pending' THEN to_json(x.next_attempt_at) #>> '{}' END AS next_attempt_at,"
	" CASE WHEN x.state = 'pending' THEN greatest(0, ceil(extract(epoch FROM"
	"   x.next_attempt_at - now())))::bigint END AS next_attempt_in_seconds,"
	" x.last_status, x.last_error, x.last_response,"
	" to_json(x.created_at) #>> '{}' AS created_at,"
	" floor(extract(epoch FROM now() - x.created_at))::bigint AS age_seconds,"
	/* The table's one cell for what the last attempt got. */
	" concat_ws(': ', 'HTTP ' || x.last_status, coalesce(x.last_error, x.last_response)) AS _last"
	" FROM outbox x JOIN stores st ON st.id = x.store_id"
	" LEFT JOIN suppliers sp ON sp.id = x.supplier_id"
	" WHERE ($1::boolean IS NOT TRUE OR x.state = 'failed')"
	"   AND ($2::text IS NULL OR sp.code = $2) AND ($3::text IS NULL OR st.code = $3)"
	"   AND ($4::timestamptz IS NULL OR x.created_at >= $4)"
	"   AND ($5::interval IS NULL OR x.created_at >= now() - $5::interval)"
	" ORDER BY x.id DESC LIMIT $6";

int ctl_cmd_outbox_list(struct ctl *c, int argc, char **argv)
{
	static const struct ctl_col cols[] = {
		{ "ID", "id", CTL_FMT_TEXT, 1 },
		{ "KIND", "kind", CTL_FMT_TEXT, 0 },
		{ "TARGET", "target", CTL_FMT_TEXT, 0 },
		{ "REQUEST_ID", "request_id", CTL_FMT_TEXT, 0 },
		{ "STATE", "state", CTL_FMT_TEXT, 0 },
		{ "ATTEMPTS", "attempts", CTL_FMT_TEXT, 1 },
		{ "NEXT_ATTEMPT", "next_attempt_in_seconds", CTL_FMT_DUE, 0 },
		{ "LAST", "_last", CTL_FMT_SHORT, 0 },
		{ "AGE", "age_seconds", CTL_FMT_AGE, 1 },
	};
	struct ctl_filters o;
	int rc = ctl_parse_filters(argc, argv, "outbox list", "fjpstl", &o);
	if (rc != CTL_OK)
		return rc;
	const char *params[] = { o.failed ? "true" : NULL, o.supplier, o.store, o.since.at,
	                         o.since.ago[0] ? o.since.ago : NULL, o.limit };
	const struct ctl_list l = { "outbox list", ctl_outbox_list_sql, 6, params, cols,
	                            sizeof cols / sizeof cols[0], "(no messages)" };
	return ctl_list_filtered(c, &o, &l);
}

/* The failed messages asked for: $1 one id, or every failed one of
 * supplier $2 / store $3. */
#define CTL_RETRY_WHICH                                                                        \
	" FROM outbox x JOIN stores st ON st.id = x.store_id"                                  \
	" LEFT JOIN suppliers sp ON sp.id = x.supplier_id"                                     \
	" WHERE x.state = 'failed' AND ($1::bigint IS NULL OR x.id = $1::bigint)"              \
	"   AND ($2::text IS NULL OR sp.code = $2) AND ($3::text IS NULL OR st.code = $3)"

/* First, alone: the fulfillment requests of those messages, locked in id
 * order. dropshipd handles a delivery failure (request_failures) under a
 * lock that conflicts with this one, so the next statement, which starts
 * after this one, sees either all of what it did or none of it. NO KEY:
 * rows that refer to a request (a failure being recorded) may still be
 * written meanwhile. */
static const char ctl_outbox_lock_sql[] =
	"SELECT count(*) FROM (SELECT r.id FROM fulfillment_requests r"
	" WHERE r.id IN (SELECT x.request_id" CTL_RETRY_WHICH " AND x.kind = 'fulfillment.requested')"
	" ORDER BY r.id FOR NO KEY UPDATE) l";

/* Locks the messages, decides which may go again, and re-queues those
 * with a fresh attempt budget (last_* kept for the record). A fulfillment
 * request may go again only while it still owns a routed line: its lines
 * may have been re-routed to another request or given up. Its request,
 * failed with the message, is pending again, and a failure dropshipd has
 * not handled yet (request_failures) is withdrawn: the message goes to the
 * same supplier again, so its lines must not also go to another one. */
static const char ctl_outbox_retry_sql[] =
	"WITH c AS (SELECT x.id, x.kind, x.request_id, coalesce(sp.code, 'store:' || st.code) AS target,"
	"   x.kind <> 'fulfillment.requested' OR EXISTS (SELECT 1 FROM order_lines l"
	"     WHERE l.request_id = x.request_id AND l.status = 'routed') AS ok"
	CTL_RETRY_WHICH " ORDER BY x.id FOR UPDATE OF x),"
	" q AS (UPDATE outbox x SET state = 'pending', attempts = 0, next_attempt_at = now(),"
	"   lease_token = NULL, lease_expires_at = NULL FROM c WHERE x.id = c.id AND c.ok),"
	" r AS (UPDATE fulfillment_requests r SET status = 'pending', reason = NULL, updated_at = now()"
	"   FROM c WHERE c.ok AND c.kind = 'fulfillment.requested' AND r.id = c.request_id"
	"     AND r.status = 'failed'),"
	" w AS (DELETE FROM request_failures f USING c WHERE c.ok AND c.kind = 'fulfillment.requested'"
	"   AND f.request_id = c.request_id)"
	" SELECT c.id::text, c.kind, c.target, c.request_id::text, c.ok FROM c ORDER BY c.id";

enum { CTL_RETRY_ID, CTL_RETRY_KIND, CTL_RETRY_TARGET, CTL_RETRY_REQUEST, CTL_RETRY_OK };

#define CTL_RETRY_WHY "its request no longer has a routed line: they were re-routed or given up"

/* Why ID was not re-queued: it does not exist, or is not failed. */
static int ctl_outbox_not_failed(PGconn *conn, const char *id)
{
	PGresult *res = PQexecParams(conn, "SELECT state FROM outbox WHERE id = $1::bigint", 1, NULL,
	                             &id, NULL, NULL, 0);
	int rc;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = ctl_pg_fail(conn, res, "outbox retry");
	else if (PQntuples(res) == 0)
		rc = ctl_fail("outbox retry: no outbox message %s", id);
	else
		rc = ctl_fail("outbox retry: message %s is %s, not failed; only failed messages are "
		              "re-queued", id, PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

/* Prints what happened to each message; returns how many were re-queued
 * and sets *refused. */
static int ctl_outbox_report(const PGresult *res, int one, int *refused)
{
	int requeued = 0;
	*refused = 0;
	for (int r = 0; r < PQntuples(res); r++) {
		const char *id = PQgetvalue(res, r, CTL_RETRY_ID), *kind = PQgetvalue(res, r, CTL_RETRY_KIND);
		const char *target = PQgetvalue(res, r, CTL_RETRY_TARGET);
		if (strcmp(PQgetvalue(res, r, CTL_RETRY_OK), "t") == 0) {
			printf("message %s (%s to %s) re-queued: pending, attempts 0\n", id, kind, target);
			requeued++;
			continue;
		}
		(*refused)++;
		/* One ID refused is the command's failure: stderr. */
		fprintf(one ? stderr : stdout, "%smessage %s (%s to %s, request %s) not re-queued: "
		        CTL_RETRY_WHY "\n", one ? CTL_PROG ": outbox retry: " : "", id, kind, target,
		        PQgetvalue(res, r, CTL_RETRY_REQUEST));
	}
	return requeued;
}

int ctl_cmd_outbox_retry(struct ctl *c, int argc, char **argv)
{
	struct ctl_filters o;
	long long v;
	int rc = ctl_parse_filters(argc, argv, "outbox retry", "fpsi", &o);
	if (rc != CTL_OK)
		return rc;
	if (!o.id && !o.failed)
		return ctl_usage_error("outbox retry: missing ID or --failed (outbox retry ID | --failed "
		                       "[--supplier CODE] [--store CODE])");
	if (o.id && o.failed)
		return ctl_usage_error("outbox retry: give an ID or --failed, not both");
	if (o.id && (o.supplier || o.store))
		return ctl_usage_error("outbox retry: --supplier and --store go with --failed, not an ID");
	/* Outbox ids are bigints like order ids: the same rule. */
	if (o.id && admin_parse_order_id(o.id, &v) < 0)
		return ctl_usage_error("outbox retry: ID '%s' is not a message id (a whole number from 1, "
		                       "as outbox list shows)", o.id);
	PGconn *conn;
	if ((rc = ctl_connect(c, &conn)) != CTL_OK)
		return rc;
	PGresult *res = NULL;
	if ((rc = ctl_check_filters(conn, "outbox retry", &o)) != CTL_OK ||
	    (rc = ctl_exec_ok(conn, "BEGIN", "outbox retry")) != CTL_OK)
		goto cleanup;
	const char *params[] = { o.id, o.supplier, o.store };
	res = PQexecParams(conn, ctl_outbox_lock_sql, 3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = ctl_pg_fail(conn, res, "outbox retry");
		goto cleanup;
	}
	PQclear(res);
	res = PQexecParams(conn, ctl_outbox_retry_sql, 3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = ctl_pg_fail(conn, res, "outbox retry");
		goto cleanup;
	}
	if (o.id && PQntuples(res) == 0) {
		rc = ctl_outbox_not_failed(conn, o.id);
		goto cleanup;
	}
	int refused, requeued = ctl_outbox_report(res, o.id != NULL, &refused);
	/* Delivered with the COMMIT: every dropshipd wakes its dispatcher. */
	if (requeued > 0)
		rc = ctl_exec_ok(conn, "NOTIFY dropship_outbox", "outbox retry");
	if (rc == CTL_OK)
		rc = ctl_exec_ok(conn, "COMMIT", "outbox retry");
	if (rc != CTL_OK || o.id) {
		if (rc == CTL_OK && refused)
			rc = CTL_FAIL;
		goto cleanup;
	}
	if (PQntuples(res) == 0)
		puts("no failed messages to re-queue");
	else
		printf("re-queued %d message%s, refused %d%s\n", requeued, requeued == 1 ? "" : "s",
		       refused, refused ? " (" CTL_RETRY_WHY ")" : "");
cleanup:
	PQclear(res);
	PQfinish(conn);
	return rc;
}

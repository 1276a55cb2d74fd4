#include <stdio.h>

#include <CUnit/CUnit.h>

#include "support/stranded.h"

/* One row per order stuck outside the view, with every reason found. */
static const char stranded_hidden_sql[] =
	"WITH live AS (SELECT r.id FROM fulfillment_requests r"
	"   WHERE r.status IN ('pending', 'sent', 'accepted')"
	"     AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.request_id = r.id"
	"       AND x.kind = 'fulfillment.requested' AND x.state = 'failed'"
	"       AND NOT EXISTS (SELECT 1 FROM request_failures f WHERE f.request_id = r.id))),"
	" why AS ("
	"  SELECT o.store_id, o.id, 'status needs_attention' AS why FROM orders o"
	"   WHERE o.status = 'needs_attention'"
	"  UNION ALL SELECT o.store_id, o.id, 'no lines' FROM orders o"
	"   WHERE o.status <> 'cancelled' AND NOT EXISTS (SELECT 1 FROM order_lines l"
	"     WHERE l.store_id = o.store_id AND l.order_id = o.id)"
	"  UNION ALL SELECT l.store_id, l.order_id, 'line ' || l.line_no || ' routed to '"
	"     || coalesce('a ' || r.status || ' request', 'no request')"
	"     || CASE WHEN r.status IN ('pending', 'sent', 'accepted') THEN ' whose message failed' ELSE '' END"
	"   FROM order_lines l LEFT JOIN fulfillment_requests r ON r.id = l.request_id"
	"   WHERE l.status = 'routed' AND (l.request_id IS NULL OR l.request_id NOT IN (SELECT id FROM live))"
	"  UNION ALL SELECT l.store_id, l.order_id, 'line ' || l.line_no || ' is ' || l.status FROM order_lines l"
	"   WHERE l.status NOT IN ('routed', 'unroutable', 'shipped', 'delivered', 'cancelled'))"
	" SELECT o.id, st.code, o.external_id, o.status, string_agg(w.why, '; ' ORDER BY w.why)"
	" FROM why w JOIN orders o ON o.store_id = w.store_id AND o.id = w.id JOIN stores st ON st.id = o.store_id"
	" WHERE NOT EXISTS (SELECT 1 FROM reporting.stranded_orders s WHERE s.order_id = o.id AND s.store = st.code)"
	" GROUP BY o.id, st.code, o.external_id, o.status ORDER BY o.id";

long stranded_hidden(PGconn *db)
{
	PGresult *res = PQexec(db, stranded_hidden_sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "stranded: %s", PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	long n = PQntuples(res);
	for (int r = 0; r < n; r++)
		printf("\n    order %s (store %s, external id %s) is %s, stuck where stranded_orders does not show it: %s",
		       PQgetvalue(res, r, 0), PQgetvalue(res, r, 1), PQgetvalue(res, r, 2), PQgetvalue(res, r, 3),
		       PQgetvalue(res, r, 4));
	if (n)
		printf("\n");
	PQclear(res);
	return n;
}

void stranded_check(PGconn *db)
{
	CU_ASSERT_EQUAL(stranded_hidden(db), 0);
}

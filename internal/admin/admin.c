#include <errno.h>
#include <stdlib.h>
#include <string.h>


#include "admin/admin.h"
#include "config/config.h"
#include "log/log.h"
#include "mem/mem.h"

/* Money goes out as decimal text, as in the routing candidates: JSON numbers
 * would invite clients to read it into floating point. */
const char admin_order_sql[] =
	"SELECT json_build_object("
	"  'order_id', o.id::text, 'store', s.code, 'external_id', o.external_id, 'name', o.name,"
	"  'status', o.status, 'currency', o.currency, 'placed_at', o.placed_at,"
	"  'created_at', o.created_at, 'updated_at', o.updated_at,"
	"  'webhook_id', o.webhook_id, 'event_id', o.event_id,"
	"  'customer', json_build_object('email', o.customer_email, 'name', o.customer_name),"
	"  'ship_to', json_build_object('name', o.ship_name, 'line1', o.ship_line1, 'line2', o.ship_line2,"
	"      'city', o.ship_city, 'region', o.ship_region, 'postal_code', o.ship_postal_code,"
	"      'country', o.ship_country, 'phone', o.ship_phone),"
	"  'lines', (SELECT coalesce(json_agg(json_build_object("
	"      'line', l.line_no, 'sku', l.sku, 'title', l.title, 'quantity', l.quantity,"
	"      'unit_price', l.unit_price::text, 'status', l.status, 'reason', l.reason,"
	"      'supplier', sp.code, 'unit_cost', l.unit_cost::text, 'reserved', l.reserved,"
	"      'request_id', l.request_id, 'carrier', l.carrier, 'tracking_number', l.tracking_number,"
	"      'tracking_url', l.tracking_url) ORDER BY l.line_no), '[]')"
	"    FROM order_lines l LEFT JOIN suppliers sp ON sp.id = l.supplier_id"
	"    WHERE l.store_id = o.store_id AND l.order_id = o.id),"
	"  'routing_decisions', (SELECT coalesce(json_agg(json_build_object("
	"      'line', d.line_no, 'attempt', d.attempt, 'policy', d.policy, 'supplier', sp.code,"
	"      'offer_id', d.offer_id, 'reason', d.reason, 'search', d.search,"
	"      'consolidated', d.consolidated, 'decided_at', d.decided_at, 'candidates', d.candidates)"
	"      ORDER BY d.line_no, d.attempt), '[]')"
	"    FROM routing_decisions d LEFT JOIN suppliers sp ON sp.id = d.supplier_id"
	"    WHERE d.store_id = o.store_id AND d.order_id = o.id),"
	"  'requests', (SELECT coalesce(json_agg(json_build_object("
	"      'request_id', r.id, 'supplier', sp.code, 'status', r.status, 'reason', r.reason,"
	"      'created_at', r.created_at, 'updated_at', r.updated_at, 'accepted_at', r.accepted_at,"
	"      'shipped_at', r.shipped_at, 'carrier', r.carrier, 'tracking_number', r.tracking_number,"
	"      'tracking_url', r.tracking_url,"
	"      'events', (SELECT coalesce(json_agg(json_build_object("
	"          'type', e.type, 'from', e.from_status, 'to', e.to_status, 'occurred_at', e.occurred_at,"
	"          'received_at', e.received_at, 'webhook_id', e.webhook_id) ORDER BY e.id), '[]')"
	"        FROM request_events e WHERE e.request_id = r.id),"
	"      'deliveries', (SELECT coalesce(json_agg(json_build_object("
	"          'kind', x.kind, 'state', x.state, 'attempts', x.attempts, 'last_status', x.last_status,"
	"          'last_error', x.last_error, 'next_attempt_at', x.next_attempt_at,"
	"          'delivered_at', x.delivered_at,"
	/* a platform message's HTTP calls, every attempt's (outbox_steps) */
	"          'steps', (SELECT coalesce(json_agg(json_build_object("
	"              'attempt', st.attempt, 'step', st.step, 'action', st.action, 'method', st.method,"
	"              'path', st.path, 'started_at', st.started_at, 'status', st.status, 'error', st.error,"
	"              'latency_ms', st.latency_ms, 'ref', st.ref) ORDER BY st.attempt, st.step), '[]')"
	"            FROM outbox_steps st WHERE st.outbox_id = x.id)"
	"          ) ORDER BY x.id), '[]')"
	"        FROM outbox x WHERE x.request_id = r.id)"
	"      ) ORDER BY r.created_at, r.id), '[]')"
	"    FROM fulfillment_requests r JOIN suppliers sp ON sp.id = r.supplier_id"
	"    WHERE r.store_id = o.store_id AND r.order_id = o.id)"
	")::text"
	" FROM orders o JOIN stores s ON s.id = o.store_id WHERE o.id = $1::bigint";

const struct db_stmt_def admin_stmts[] = {
	{ "admin_order", admin_order_sql },
	{ NULL, NULL },
};

int admin_parse_order_id(const char *s, long long *id)
{
	if (!s || !*s || strlen(s) > 19 || strspn(s, "0123456789") != strlen(s))
		return -1;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || v <= 0)
		return -1;
	*id = v;
	return 0;
}

/* One lookup in flight. Owned by the handler from admin_handle_order until
 * admin_finish, which replies, releases the connection and frees it. */
struct admin_req {
	struct http_ctx *ctx;
	struct db_conn *conn;
	struct db_batch *batch;
	char id[24];
};

static void admin_finish(struct admin_req *a)
{
	if (a->conn)
		db_conn_release(a->conn);
	db_batch_free(a->batch);
	free(a);
}

static void admin_on_result(struct db_conn *conn, struct db_batch *batch, void *arg)
{
	(void)conn;
	struct admin_req *a = arg;
	/* The connection goes back before the reply: the result stays with the batch. */
	db_conn_release(a->conn);
	a->conn = NULL;
	PGresult *res = db_batch_result(batch, 0);
	if (!db_batch_ok(batch) || !res) {
		char q[300];
		log_warn("admin order lookup failed", "order_id=%s error=%s", a->id,
		         log_quote(q, sizeof q, db_batch_error(batch)));
		if (db_batch_conn_failed(batch))
			http_reply_unavailable(a->ctx, 1);
		else
			http_reply_error(a->ctx, 500, "internal_error", "the order could not be read", NULL);
	} else if (PQntuples(res) == 0) {
		http_reply_error(a->ctx, 404, "not_found", "no such order", NULL);
	} else {
		http_reply_text(a->ctx, 200, "application/json", PQgetvalue(res, 0, 0),
		                (size_t)PQgetlength(res, 0, 0));
	}
	admin_finish(a);
}

static void admin_on_conn(struct db_conn *conn, void *arg)
{
	struct admin_req *a = arg;
	if (!conn) {
		http_reply_unavailable(a->ctx, 1);
		admin_finish(a);
		return;
	}
	a->conn = conn;
	const char *params[] = { a->id };
	db_batch_add(a->batch, "admin_order", NULL, 1, params);
	db_conn_send(conn, a->batch, admin_on_result, a);
}

/* The Authorization header's bearer token, or NULL. */
static const char *admin_bearer(const struct http_ctx *ctx)
{
	const char *h = http_header(ctx, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return h;
}

int admin_check(struct http_ctx *ctx)
{
	const char *token = ctx->env->cfg->admin.token;
	/* With no token configured the admin API does not exist. */
	if (!token[0]) {
		http_reply_error(ctx, 404, "not_found", "no such endpoint", NULL);
		return 0;
	}
	const char *given = admin_bearer(ctx);
	if (!given || !http_secret_equal(given, token)) {
		http_add_header(ctx, "WWW-Authenticate", "Bearer realm=\"dropship admin\"");
		http_reply_error(ctx, 401, given ? "invalid_token" : "missing_token",
		                 given ? "the bearer token is not valid"
		                       : "an Authorization: Bearer token is required", NULL);
		return 0;
	}
	return 1;
}

void admin_handle_order(struct http_ctx *ctx, const char *id)
{
	if (!admin_check(ctx))
		return;
	long long v;
	if (admin_parse_order_id(id, &v) < 0) {
		http_reply_error(ctx, 404, "not_found", "no such order", NULL);
		return;
	}
	struct admin_req *a = mem_calloc(1, sizeof *a);
	a->batch = db_batch_new();
	a->ctx = ctx;
	snprintf(a->id, sizeof a->id, "%lld", v);
	db_pool_acquire(ctx->env->db, admin_on_conn, a);
}

/* admin: the operator's view of one order — GET /v1/admin/orders/{id} on
 * dropshipd, and `dropshipctl order show` — built by one SQL statement so
 * both show the same document: the order, its lines, routing decisions,
 * fulfillment requests with their events and deliveries. */
#ifndef DROPSHIP_ADMIN_H
#define DROPSHIP_ADMIN_H
#include "db/db.h"
#include "http/http.h"

/* One parameter, the order id (bigint as text); one row with one column,
 * the JSON document, or no row when there is no such order. */
extern const char admin_order_sql[];

/* Prepared statements the handler needs on every pool connection. */
extern const struct db_stmt_def admin_stmts[];

/* Parses an order id: 1..2^63-1 in decimal digits only. Returns 0 or -1. */
int admin_parse_order_id(const char *s, long long *id);

/* The admin bearer token check: 1 when the request carries the token;
 * otherwise replies (404 when the admin API is off, 401 when the token is
 * missing or wrong), frees ctx and returns 0. */
int admin_check(struct http_ctx *ctx);

/* Handles GET /v1/admin/orders/{id}: bearer token (404 when the admin API
 * is off, 401 when missing or wrong), then the document. Replies and frees ctx. */
void admin_handle_order(struct http_ctx *ctx, const char *id);

#endif

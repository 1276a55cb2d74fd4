/* plan: routing an order's lines across stock-reservation rounds, and the
 * SQL that feeds it. plan owns the routing statements (candidate offers,
 * reservation with fresh stock, fulfillment requests with their outbox
 * messages) and decodes their results here, in one place, into the typed
 * rows the engine reads (struct route_offer). Everything between decoding
 * and the next statement is pure: plan_route, plan_reservations,
 * plan_set_stock, plan_reserved, plan_next_round take and give plain data.
 * intake (new orders) and callback (re-routing after a rejection) drive it;
 * neither runs the other's statements.
 *
 * A round: plan_route picks an offer per line; plan_add_reserve sends the
 * conditional stock updates; plan_take_reserve reads which succeeded and the
 * offers' fresh stock, and says whether lines that lost their stock to a
 * concurrent order need another round (then plan_add_reserve again). */
#ifndef DROPSHIP_PLAN_H
#define DROPSHIP_PLAN_H
#include <stddef.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "db/db.h"
#include "route/route.h"

/* Reservation rounds before the lines still short are given up as out_of_stock. */
#define PLAN_MAX_ROUNDS 8

/* Prepared statements of routing, for every pool connection ({NULL} ends). */
extern const struct db_stmt_def plan_stmts[];

struct plan_line {
	int line_no;              /* the order line's number (plan_init: index + 1) */
	const char *sku;          /* NULL only for a line settled with ROUTE_NO_SKU */
	int quantity;
	int offer;                /* index into offers; -1 none */
	enum route_reason reason;
	int done;                 /* reserved, or given up as unroutable */
};

/* Owns its arrays; strings are borrowed (the candidates result and the
 * caller's lines must outlive it). */
struct plan {
	struct route_offer *offers;
	long long *supplier_ids;
	size_t noffers;
	struct plan_line *lines;
	size_t nlines;
	const char *country;
	enum route_policy policy;
	int tolerance_pct;
	int round;
	int search_exact, consolidated;   /* of the first round's plan */
};

/* Adds the candidates statement to b: every offer of the n skus, with its
 * supplier, except offers of the nexclude suppliers in exclude (may be
 * NULL). Returns the statement's index in b. */
int plan_add_candidates(struct db_batch *b, const char *const *skus, size_t n,
                        const long long *exclude, size_t nexclude);

/* Sets up nlines lines (fill sku/quantity after) and decodes the offers of
 * a candidates result (plan_add_candidates). Returns 0, or -1 when the
 * result is not a candidates result. */
int plan_init(struct plan *p, size_t nlines, const PGresult *candidates, const char *country,
              enum route_policy policy, int tolerance_pct);
void plan_free(struct plan *p);

/* Settles line i as unroutable for a reason found before routing (no_sku,
 * no_address): plan_route leaves it alone. */
void plan_settle(struct plan *p, size_t i, enum route_reason reason);

/* Routes the lines not done. Returns 0, or -1 on bad input. */
int plan_route(struct plan *p);

/* Offers to reserve now and how many units, one entry per offer (lines
 * sharing an offer add up), as PostgreSQL array literals "{..}" (malloc'd).
 * Returns the number of offers (0: nothing to reserve). */
int plan_reservations(const struct plan *p, char **ids, char **qty);

/* Adds this round's reservation (and the fresh stock of the offers tried)
 * to b. Returns the index of its first statement, or -1 when nothing is
 * left to reserve. */
int plan_add_reserve(const struct plan *p, struct db_batch *b);

/* Takes the outcome of the reservation added at index i of b. Returns 1
 * when lines were re-planned for another round (plan_add_reserve again),
 * 0 when every line is settled, -1 when routing failed. */
int plan_take_reserve(struct plan *p, const struct db_batch *b, int i);

/* Takes fresh stock for an offer (after a reservation round). */
void plan_set_stock(struct plan *p, long long offer_id, int stock, int available);
/* Marks done the lines whose offer was reserved. */
void plan_reserved(struct plan *p, long long offer_id);
/* After a round: lines still pending are re-planned (returns 1), or given up
 * as out_of_stock past PLAN_MAX_ROUNDS (returns 0). */
int plan_next_round(struct plan *p);

/* Adds to b: one fulfillment request per supplier for the order's routed
 * lines that have none yet, with its fulfillment.requested outbox message
 * (store_id, order_id as decimal text). Returns the statement's index. */
int plan_add_requests(struct db_batch *b, const char *store_id, const char *order_id);

/* Line i's routing as JSON: {"line", "status", "reason", "supplier_id",
 * "offer_id", "reserved", "unit_cost"} (new reference). */
json_t *plan_line_json(const struct plan *p, size_t i);
/* Line i's decision: {"line", "supplier_id", "offer_id", "reason",
 * "candidates": [every offer of its sku, as the engine saw it]}. */
json_t *plan_decision_json(const struct plan *p, size_t i);
/* Lines routed. */
size_t plan_routed(const struct plan *p);

#endif

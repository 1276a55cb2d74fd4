/* plan: routing lines across stock-reservation rounds. Holds the candidate
 * offers (as read by the candidates query), runs the routing engine on the
 * lines not yet settled, says what to reserve, takes the reservation's
 * outcome and fresh stock figures, and describes the result as JSON for the
 * database. No I/O: intake and supplier callbacks (re-routing) drive it.
 *
 * The candidates query's columns, in order: offer id, sku, supplier code,
 * supplier priority, supplier active, offer available, unit cost and
 * shipping cost (bigint, 1/10000 units), stock, lead_time_days, ships_to
 * (';'-joined, NULL = everywhere), supplier id. */
#ifndef DROPSHIP_PLAN_H
#define DROPSHIP_PLAN_H
#include <stddef.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "route/route.h"

/* Reservation rounds before the lines still short are given up as out_of_stock. */
#define PLAN_MAX_ROUNDS 8

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

/* Sets up nlines lines (fill sku/quantity after) and the offers from the
 * candidates result. Returns 0, or -1 out of memory. */
int plan_init(struct plan *p, size_t nlines, PGresult *candidates, const char *country,
              enum route_policy policy, int tolerance_pct);
void plan_free(struct plan *p);

/* Settles line i as unroutable for a reason found before routing (no_sku,
 * no_address): plan_route leaves it alone. */
void plan_settle(struct plan *p, size_t i, enum route_reason reason);

/* Routes the lines not done. Returns 0, or -1 on bad input. */
int plan_route(struct plan *p);

/* Offers to reserve now and how many units, one entry per offer (lines
 * sharing an offer add up), as PostgreSQL array literals "{..}" (malloc'd).
 * Returns the number of offers (0: nothing to reserve), or -1 out of memory. */
int plan_reservations(const struct plan *p, char **ids, char **qty);

/* Takes fresh stock for an offer (after a reservation round). */
void plan_set_stock(struct plan *p, long long offer_id, int stock, int available);
/* Marks done the lines whose offer was reserved. */
void plan_reserved(struct plan *p, long long offer_id);
/* After a round: lines still pending are re-planned (returns 1), or given up
 * as out_of_stock past PLAN_MAX_ROUNDS (returns 0). */
int plan_next_round(struct plan *p);

/* Line i's routing as JSON: {"line": i+1, "status", "reason", "supplier_id",
 * "offer_id", "reserved", "unit_cost"} (new reference). */
json_t *plan_line_json(const struct plan *p, size_t i);
/* Line i's decision: {"line", "supplier_id", "offer_id", "reason",
 * "candidates": [every offer of its sku, as the engine saw it]}. */
json_t *plan_decision_json(const struct plan *p, size_t i);
/* Lines routed. */
size_t plan_routed(const struct plan *p);

#endif

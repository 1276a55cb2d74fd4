/* plan: routing orders' lines across stock-reservation rounds, and the SQL
 * that feeds and records it. plan owns the routing statements (candidate
 * offers; the reservation, which also returns fresh stock; fulfillment
 * requests and their outbox messages) and decodes their results here, in
 * one place, into the typed rows the engine reads (struct route_offer).
 * Between decoding and the next statement everything is plain data.
 * intake (a group of new orders) and callback (one order's lines re-routed
 * after a rejection) drive it; neither runs the other's statements.
 *
 * A pool holds the offers of a set of orders, read once. Each order's plan
 * takes from it in turn: plan_route routes the order's pending lines on
 * the stock the orders before it in this round have not planned on, so one
 * reservation statement for the whole set cannot oversell between them.
 * plan_pool_add_reserve sends that statement; plan_pool_take_reserve
 * settles the lines whose offers were reserved, takes the fresh stock of
 * the others (a concurrent transaction took it) and routes those lines
 * again, until every line is reserved or given up (PLAN_MAX_ROUNDS). */
#ifndef DROPSHIP_PLAN_H
#define DROPSHIP_PLAN_H
#include <stddef.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "db/db.h"
#include "route/route.h"

/* Reservation rounds before the lines still short are given up as out_of_stock. */
#define PLAN_MAX_ROUNDS 8
/* Text of a request id (a UUID) with its NUL. */
#define PLAN_UUID_LEN 37

/* Prepared statements of routing, for every pool connection ({NULL} ends). */
extern const struct db_stmt_def plan_stmts[];

/* The offers a set of orders is planned on, each with its supplier's
 * scorecard (supplier_scores; the default prior's means for a supplier
 * not yet counted). Strings point into the candidates result, which must
 * outlive the pool. */
struct plan_pool {
	struct route_offer *offers;   /* stock: as last read, net of what this transaction holds */
	long long *supplier_ids;
	const char **supplier_skus;
	int *answered;                /* requests the supplier's rates were counted on; -1 not counted */
	int *planned;                 /* units planned on each offer this round, not yet reserved */
	size_t n;
};

/* A store's routing terms besides its policy and tolerance: what a unit
 * rejected or late costs (balanced) and the health floors (any policy). */
struct plan_terms {
	long long penalty;            /* 1/10000 units, 0..ROUTE_MAX_COST */
	int min_accept_ppm;           /* 0..ROUTE_PPM */
	int min_on_time_ppm;
};

/* The columns of a stores row (alias t) that plan_terms_parse reads, in
 * its order, for the statements that read a store's policy. */
#define PLAN_TERMS_SQL(t) \
	"(" t ".penalty * 10000)::bigint, (" t ".min_acceptance_rate * 10000)::int," \
	" (" t ".min_on_time_rate * 10000)::int"

struct plan_line {
	int line_no;              /* the order line's number (plan_init: index + 1) */
	const char *sku;          /* NULL only for a line settled with ROUTE_NO_SKU */
	int quantity;
	int offer;                /* index into the plan's offers; -1 none */
	enum route_reason reason;
	int done;                 /* reserved, or given up as unroutable */
	char request_id[PLAN_UUID_LEN]; /* set by plan_requests_add; "" none */
};

/* One order's routing. Owns its arrays; lines' skus are the caller's. */
struct plan {
	struct plan_pool *pool;
	struct route_offer *offers;   /* the pool's offers of this order's SKUs, with the
	                               * stock this order may take; built by the first route */
	size_t *pool_index;           /* offers[k] is pool->offers[pool_index[k]] */
	size_t noffers;
	struct plan_line *lines;
	size_t nlines;
	const char *country;
	enum route_policy policy;
	int tolerance_pct;
	struct plan_terms terms;      /* the store's; set before the first route (zero: none) */
	const long long *exclude;     /* suppliers this order may not go to (those that
	                               * rejected it); set before the first route; borrowed */
	size_t nexclude;
	int round;
	int routed_once;
	int search_exact, consolidated;   /* of the first round's plan */
};

/* Where a routed order's fulfillment requests ship, as suppliers are told. */
struct plan_order {
	const char *store_id, *store_code, *order_id, *external_id;
	const char *ship_name, *ship_line1, *ship_line2, *ship_city, *ship_region,
	           *ship_postal_code, *ship_country, *ship_phone;
};

/* The rows a set of routed orders writes, set-based: their fulfillment
 * requests and messages, a routing decision per line, and for lines routed
 * again (they exist already) the update of each line. */
struct plan_writes {
	struct db_columns requests;   /* id, store_id, order_id, supplier_id */
	struct db_columns outbox;     /* request_id, supplier_id, store_id, payload */
	struct db_columns decisions;  /* store, order, line, policy, supplier, offer, reason, candidates,
	                               * search, consolidated */
	struct db_columns lines;      /* routed again: store, order, line, status, reason, supplier, offer,
	                               * reserved, unit_cost, request */
};

/* A line's outcome, as the order line records it. */
struct plan_line_result {
	const char *status;           /* "routed" or "unroutable" */
	const char *reason;           /* unroutable: the reason; NULL when routed */
	long long supplier_id, offer_id;  /* 0 when unroutable */
	const char *supplier_code;    /* NULL when unroutable */
	int reserved;                 /* units held */
	char unit_cost[32];           /* landed cost per unit, decimal text; "" when unroutable */
};

/* Adds the candidates statement to b: every offer of the n skus, with its
 * supplier, except offers of the nexclude suppliers in exclude (may be
 * NULL). Returns the statement's index in b. */
int plan_add_candidates(struct db_batch *b, const char *const *skus, size_t n,
                        const long long *exclude, size_t nexclude);

/* Decodes a candidates result into pool. Returns 0, or -1 when the result
 * is not a candidates result. */
int plan_pool_init(struct plan_pool *pool, const PGresult *candidates);
void plan_pool_free(struct plan_pool *pool);

/* The text of the PLAN_TERMS_SQL columns (NULL counts as 0), clamped to
 * the engine's ranges. */
struct plan_terms plan_terms_parse(const char *penalty, const char *min_accept, const char *min_on_time);

/* Sets up an order's plan of nlines lines on pool (fill sku/quantity after). */
void plan_init(struct plan *p, struct plan_pool *pool, size_t nlines, const char *country,
               enum route_policy policy, int tolerance_pct);
void plan_free(struct plan *p);

/* Settles line i as unroutable for a reason found before routing (no_sku,
 * no_address): plan_route leaves it alone. */
void plan_settle(struct plan *p, size_t i, enum route_reason reason);

/* Routes the lines not done on the stock the pool has left this round, and
 * plans on it. Returns 0, or -1 on bad input. */
int plan_route(struct plan *p);

/* Adds this round's reservation of everything planned on the pool (one
 * statement) to b. Returns its index, or -1 when nothing is planned. */
int plan_pool_add_reserve(struct plan_pool *pool, struct db_batch *b);

/* Takes a reservation's result (of the statement plan_pool_add_reserve
 * added) for the n plans on pool, in the order they were routed. Returns 1
 * when lines were routed again and another round is due
 * (plan_pool_add_reserve), 0 when every line is settled, -1 when res is
 * not the reservation's result or routing failed. */
int plan_pool_take_reserve(struct plan_pool *pool, struct plan *const *plans, size_t n,
                           const PGresult *res);

/* Lines routed. */
size_t plan_routed(const struct plan *p);
/* Line i's outcome. */
void plan_line_result(const struct plan *p, size_t i, struct plan_line_result *out);
/* Line i's candidates as the engine saw them, a JSON array text (malloc'd):
 * [{"offer_id","supplier","unit_cost","lead_time_days","priority","stock",
 *   "eligible","why_not","acceptance_rate","on_time_rate","answered",
 *   "expected_cost","below_floor"}]: every offer of the line's SKU, its
 * supplier's scorecard and expected unit cost under the store's penalty,
 * and why it lost. */
char *plan_candidates_text(const struct plan *p, size_t i);

void plan_writes_init(struct plan_writes *w);
void plan_writes_free(struct plan_writes *w);
/* Queues order o's writes: one fulfillment request per supplier for p's
 * routed lines without one (their lines' request_id is set) with its
 * fulfillment.requested message, created now; a decision per line; and,
 * with rerouted, an update of each line. One plan_writes holds new orders
 * or re-routed ones, not both: the decisions are first attempts for the
 * former, the lines' next attempts for the latter. */
void plan_writes_add(struct plan_writes *w, struct plan *p, const struct plan_order *o, int rerouted);
/* The statements of what is queued, each only when it has rows, in the
 * order foreign keys need: requests; (new lines: the caller's insert;
 * routed again: plan_writes_add_lines); decisions and messages. */
void plan_writes_add_requests(struct plan_writes *w, struct db_batch *b);
void plan_writes_add_lines(struct plan_writes *w, struct db_batch *b);
void plan_writes_add_rest(struct plan_writes *w, struct db_batch *b);

/* Adds the statement that derives orders' statuses from their lines and
 * writes those that change; rows: store_id, order_id, stranded (a line
 * lost its supplier and found none: needs_attention). Its result: store_id,
 * order_id, status. Returns its index. */
int plan_add_order_status(struct db_batch *b, struct db_columns *rows);

#endif

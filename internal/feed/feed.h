/* feed: POST /v1/suppliers/{supplier}/inventory, a supplier's stock levels
 * as of a time (docs/api.md, Stock feeds). The body is checked here
 * (feed_parse, pure); the levels are applied with internal/stock's
 * statements, in one transaction, and answered after its COMMIT:
 *
 *   ACQUIRE   lease a pool connection
 *   SUPPLIER  the supplier: its secrets (signature) and whether it is enabled
 *   RESOLVE   the time checked (stock_check), the SKUs turned into offer ids
 *   APPLY     BEGIN; lock the offers (stock_lock); apply (stock_apply); COMMIT
 *   NOTIFY    after the answer, when the feed gave stock to SKUs that lines
 *             may be waiting for: this worker's re-planning is woken at once
 *             (env->stock_ready) and other processes by NOTIFY dropship_stock
 *
 * Levels are absolute, so a feed delivered twice (same webhook-id) is
 * applied twice to the same effect: nothing is deduplicated. Feeds are not
 * grouped: each is its own transaction. */
#ifndef DROPSHIP_FEED_H
#define DROPSHIP_FEED_H
#include <stddef.h>
#include <jansson.h>

#include "db/db.h"
#include "http/http.h"

#define FEED_MAX_ITEMS 10000         /* items in one feed; more is 413 */
#define FEED_UNKNOWN_SHOWN 100       /* unknown SKUs an answer lists (all are counted) */
#define FEED_PRICE_LEN 32            /* a canonical decimal and its NUL */

/* Prepared statements the handler needs on every pool connection (besides stock_stmts). */
extern const struct db_stmt_def feed_stmts[];

/* One item of a feed. */
struct feed_item {
	const char *sku;                 /* points into the feed's document */
	long stock;                      /* 0..2147483647 */
	char cost[FEED_PRICE_LEN];       /* canonical decimal ("12.50"); "" when not given */
	char shipping_cost[FEED_PRICE_LEN];
	int lead_time_days;              /* 0..365; -1 when not given */
	char *ships_to;                  /* owned: "*" or "CA;US" (upper case, sorted, distinct);
	                                  * NULL when not given */
};

/* A checked feed. Owns everything it points to; feed_free releases it. */
struct feed {
	json_t *root;                    /* the parsed body */
	const char *as_of;               /* RFC 3339, in root */
	struct feed_item *items;
	size_t n;
};

/* Why a body was refused: the answer's status, code, field and message. */
struct feed_error {
	int status;                      /* 400, 413 or 422 */
	const char *code;                /* invalid_json, payload_too_large, invalid_field */
	char field[48];                  /* "items[3].stock"; "" when no one field is at fault */
	char message[200];               /* printable ASCII, without the field */
};

/* Checks a feed body. Returns 0 with f filled (release with feed_free), or
 * -1 with err filled and f empty. The first rule broken is reported, in the
 * order of the body; a SKU listed twice is reported at its second item. */
int feed_parse(const char *body, size_t len, struct feed *f, struct feed_error *err);

/* Releases what feed_parse filled. Accepts a zeroed struct. */
void feed_free(struct feed *f);

/* Handles one feed for supplier_code on ctx's worker; replies and frees ctx. */
void feed_handle(struct http_ctx *ctx, const char *supplier_code);

#endif

/* intake: POST /v1/stores/{store}/webhooks. Verifies the store's signature,
 * validates the order, stores it idempotently and answers only after COMMIT. */
#ifndef DROPSHIP_INTAKE_H
#define DROPSHIP_INTAKE_H
#include "db/db.h"
#include "http/http.h"

/* Prepared statements intake needs on every pool connection ({NULL} ends). */
extern const struct db_stmt_def intake_stmts[];

/* One worker's intake: orders verified on it wait here (a few hundred
 * microseconds at most) to share a transaction with others (group commit). */
struct intake_queue;

/* Creates the queue of the worker whose handlers see env (env must outlive it). */
struct intake_queue *intake_queue_new(struct http_env *env);
/* Frees an empty queue (after the worker's loop has ended). Accepts NULL. */
void intake_queue_free(struct intake_queue *q);

/* Handles one webhook delivery for store_code; replies and frees ctx. */
void intake_handle(struct intake_queue *q, struct http_ctx *ctx, const char *store_code);

#endif

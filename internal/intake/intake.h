/* intake: POST /v1/stores/{store}/webhooks. Verifies the store's signature,
 * validates the order, stores it idempotently and answers only after COMMIT. */
#ifndef DROPSHIP_INTAKE_H
#define DROPSHIP_INTAKE_H
#include "db/db.h"
#include "http/http.h"

/* Prepared statements intake needs on every pool connection ({NULL} ends). */
extern const struct db_stmt_def intake_stmts[];

/* Handles one webhook delivery for store_code; replies and frees ctx. */
void intake_handle(struct http_ctx *ctx, const char *store_code);

#endif

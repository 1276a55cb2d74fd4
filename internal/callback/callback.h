/* callback: POST /v1/suppliers/{supplier}/callbacks. Verifies the
 * supplier's signature, applies the event through the request state machine
 * (internal/lifecycle), records it in the append-only request_events,
 * updates lines, stock and the order's status, queues store notifications,
 * and answers only after COMMIT. */
#ifndef DROPSHIP_CALLBACK_H
#define DROPSHIP_CALLBACK_H
#include "db/db.h"
#include "http/http.h"

/* Prepared statements the handler needs on every pool connection. */
extern const struct db_stmt_def callback_stmts[];

/* One worker's callbacks: those that arrive together wait here (a few
 * hundred microseconds at most) to share a transaction. */
struct callback_queue;

/* Creates the queue of the worker whose handlers see env (env must outlive it). */
struct callback_queue *callback_queue_new(struct http_env *env);
/* Frees an empty queue (after the worker's loop has ended). Accepts NULL. */
void callback_queue_free(struct callback_queue *q);

/* Handles one callback for supplier_code; replies and frees ctx. */
void callback_handle(struct callback_queue *q, struct http_ctx *ctx, const char *supplier_code);

/* A request that missed its supplier's accept_within or ship_within (missed
 * names which) is treated as rejected for "timeout": the same transaction
 * as a supplier's rejection, re-routing included, plus a cancellation sent
 * to that supplier (supplier_code names it in the log). done(done_arg)
 * runs when it is over. Returns 0, or -1 when request_id is not a request
 * id (done is then not called). */
int callback_reject_overdue(struct callback_queue *q, const char *request_id, const char *supplier_id,
                            const char *supplier_code, const char *missed, void (*done)(void *arg),
                            void *done_arg);

/* A request whose message could not be delivered (cause: the supplier's
 * answer or the network's) fails like a rejection: its stock is given back
 * and its lines are routed to another supplier, this one excluded, in one
 * transaction that also takes it off request_failures (supplier_code names
 * the supplier in the log). done(done_arg) runs when it is over. Returns
 * 0, or -1 when request_id is not a request id. */
int callback_fail_delivery(struct callback_queue *q, const char *request_id, const char *supplier_id,
                           const char *supplier_code, const char *cause, void (*done)(void *arg),
                           void *done_arg);

#endif

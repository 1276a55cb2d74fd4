/* stranded: "no order ends in a state that reporting.stranded_orders does
 * not show". Every order the view leaves out must be on its way:
 *   - its status is not needs_attention;
 *   - it has a line, unless it was cancelled;
 *   - each line is routed to a live fulfillment request (pending, sent or
 *     accepted) whose message has not failed for good, or is cancelled,
 *     shipped or delivered (an unroutable line always puts the order in
 *     the view).
 * A failed message whose failure dropshipd has yet to handle
 * (request_failures) counts as on its way: the lines are being re-routed.
 * Suites that create orders call stranded_check at their end. */
#ifndef DROPSHIP_TEST_STRANDED_H
#define DROPSHIP_TEST_STRANDED_H
#include <libpq-fe.h>

/* The orders of the database that are stuck where the view does not show
 * them, each printed with why; how many (0: none, -1: the query failed). */
long stranded_hidden(PGconn *db);

/* A CUnit assertion that stranded_hidden finds none. */
void stranded_check(PGconn *db);

#endif

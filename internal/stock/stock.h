/* stock: absolute stock levels "as of" a time, for many offers at once.
 *
 * A supplier's level was true at its time T, but dropshipd went on
 * reserving (and giving back) stock after T: every such change is a row
 * of offer_moves. A level is therefore applied as
 *
 *     stock = greatest(0, level + sum(offer_moves.delta where at > T))
 *
 * with level_as_of = T and the offer available again; cost, shipping cost,
 * lead time, ships_to and supplier_sku change too when given. A level
 * older than the offer's level_as_of is stale and changes nothing. A T
 * more than STOCK_MAX_AGE_DAYS ago is refused (moves are kept a week), and
 * so is one more than STOCK_MAX_AHEAD_S ahead of the database's clock; a
 * T slightly ahead is taken as now. SKUs whose offers gained stock, or
 * became available with stock, are upserted into sku_changes so that the
 * lines waiting for them are planned again; after COMMIT, send
 * stock_notify_sql when any was (struct stock_result.skus).
 *
 * One definition, two inputs: arrays (stock_apply_sql, for a feed of a few
 * thousand items) or the temporary table stock_levels (stock_levels_*, for
 * `dropshipctl catalog import`'s million rows). Either way, in one
 * transaction:
 *
 *     lock (stock_lock_sql / stock_levels_lock_sql)
 *     apply (stock_apply_sql / stock_levels_apply_sql)  -> one row, stock_decode
 *     COMMIT, then stock_notify_sql when result.skus > 0
 *
 * The lock is its own statement because under READ COMMITTED a statement
 * sees what was committed when it started: the apply then reads every move
 * of its offers, and no reservation can change them until COMMIT. The
 * array form locks its offers in id order (two applications cannot
 * deadlock); the staging form, made for a whole catalog, locks the offers
 * table instead (SHARE ROW EXCLUSIVE: writers wait until COMMIT, readers
 * do not), as locking each of a million rows would write each of them.
 *
 * This module holds SQL text and pure helpers; it does no I/O. */
#ifndef DROPSHIP_STOCK_H
#define DROPSHIP_STOCK_H
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "db/db.h"

#define STOCK_MAX_AGE_DAYS 7       /* offer_moves keeps a week */
#define STOCK_MAX_AHEAD_S 300      /* clock skew taken as now */
#define STOCK_TIME_LEN 28          /* "2026-11-22T10:00:01.234567Z" and its NUL */

/* The input, one row per offer; an offer must not appear twice:
 *   offer_id       bigint      the offer (one that does not exist is skipped)
 *   level          integer     >= 0, the supplier's stock at T (NULL: skipped)
 *   supplier_sku   text        NULL keeps the stored value, as do the rest
 *   cost           numeric(20, 4)
 *   shipping_cost  numeric(20, 4)
 *   lead_time_days integer
 *   ships_to       text        '*' (everywhere) or upper-case ISO 3166-1
 *                              alpha-2 codes joined by ';', sorted, no repeats
 *
 * stock_apply_sql takes it as arrays: $1 T (timestamptz; NULL = now),
 * $2 bigint[] offer ids, $3 int[] levels, $4 text[] supplier_skus,
 * $5 numeric[] costs, $6 numeric[] shipping costs, $7 int[] lead times,
 * $8 text[] ships_to. $4..$8 may be shorter than $2, or '{}': the missing
 * elements are NULL (kept). stock_lock_sql takes $1, the offer ids. */
extern const char stock_lock_sql[];
extern const char stock_apply_sql[];

/* The same over the temporary table stock_levels, dropped at COMMIT, whose
 * columns are the input's in that order. The apply takes $1, T; the lock
 * (the table's) takes nothing and returns no row. */
extern const char stock_levels_create_sql[];
extern const char stock_levels_lock_sql[];
extern const char stock_levels_apply_sql[];

/* One row: refused, NULL when T ($1, NULL = now) may be applied, else why
 * not ("too_old", "future"; stock_refusal_of reads it); as_of, the T an
 * apply in this transaction uses (now for NULL, or for a T a little
 * ahead), as text. For checking T before doing the work, and for rows a
 * caller writes itself (new offers); the apply checks again. */
extern const char stock_check_sql[];

/* After COMMIT, when sku_changes gained rows: wakes the re-planning. */
extern const char stock_notify_sql[];

/* stock_check, stock_lock, stock_apply, to prepare on pool connections
 * ({NULL} ends). */
extern const struct db_stmt_def stock_stmts[];

/* The columns of the apply's one row, in order. */
enum stock_col {
	STOCK_COL_REFUSED,             /* NULL, or why T was refused (nothing changed) */
	STOCK_COL_APPLIED,             /* offers whose values changed */
	STOCK_COL_STALE,               /* offers with a newer level_as_of: left alone */
	STOCK_COL_UNCHANGED,           /* offers already as given (only level_as_of moved) */
	STOCK_COL_SKIPPED,             /* input rows with no such offer, or no level */
	STOCK_COL_SKUS,                /* SKUs upserted into sku_changes */
	STOCK_NCOLS
};

enum stock_refusal {
	STOCK_OK,
	STOCK_TOO_OLD,                 /* more than STOCK_MAX_AGE_DAYS ago */
	STOCK_FUTURE,                  /* more than STOCK_MAX_AHEAD_S ahead */
	STOCK_REFUSAL_UNKNOWN,         /* a reason this build does not know */
};

struct stock_result {
	enum stock_refusal refused;
	long long applied, stale, unchanged, skipped, skus;
};

/* The refusal named by text (NULL or "" is STOCK_OK). */
enum stock_refusal stock_refusal_of(const char *text);

/* Why T was refused, for messages: "is more than 7 days ago ...". Static text. */
const char *stock_refusal_text(enum stock_refusal r);

/* Decodes the apply's result. Returns 0, or -1 when res is not one (wrong
 * shape, or not exactly one row). */
int stock_decode(const PGresult *res, struct stock_result *out);

/* T as RFC 3339 in UTC with microseconds ("2026-11-22T10:00:01.234567Z"),
 * from seconds and nanoseconds since the epoch (a file's st_mtim). Returns
 * 0, or -1 when cap is under STOCK_TIME_LEN or the time is out of range
 * (years 1..9999). */
int stock_format_time(int64_t sec, long nsec, char *buf, size_t cap);

#endif

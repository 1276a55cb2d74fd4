#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stock/stock.h"

#define STOCK_STR_(x) #x
#define STOCK_STR(x) STOCK_STR_(x)

/* T, NULL meaning now, and why it may not be applied. */
#define STOCK_AS_OF "coalesce($1::timestamptz, now())"
#define STOCK_REFUSAL                                                                         \
	"CASE WHEN " STOCK_AS_OF " < now() - interval '" STOCK_STR(STOCK_MAX_AGE_DAYS) " days'"  \
	" THEN 'too_old' WHEN " STOCK_AS_OF " > now() + interval '" STOCK_STR(STOCK_MAX_AHEAD_S)  \
	" seconds' THEN 'future' END"

#define STOCK_INPUT_COLS "offer_id, level, supplier_sku, cost, shipping_cost, lead_time_days, ships_to"

/* The application over INPUT, a relation of the input's columns.
 *   g: T (a little ahead is now) and the refusal, if any;
 *   mv: the moves after T of the input's offers: through the (offer_id, at)
 *       index for a few offers, hashed for many;
 *   c: each offer's new values, whether it is stale, and whether anything
 *      but level_as_of would change (same);
 *   u: the writes. An unchanged offer only has its level_as_of moved (so a
 *      later, older level is still found stale), and keeps updated_at;
 *   k: the SKUs that gained stock or became available with stock. */
#define STOCK_APPLY(INPUT)                                                                    \
	"WITH g AS (SELECT " STOCK_REFUSAL " AS refused, least(" STOCK_AS_OF ", now()) AS as_of),"   \
	" v AS (SELECT * FROM " INPUT "),"                                                        \
	" mv AS (SELECT m.offer_id, sum(m.delta) AS delta"                                        \
	"   FROM v JOIN offer_moves m ON m.offer_id = v.offer_id CROSS JOIN g"                     \
	"   WHERE m.at > g.as_of GROUP BY m.offer_id),"                                           \
	" n AS (SELECT o.id, o.sku, g.as_of,"                                                     \
	"   o.level_as_of IS NOT NULL AND g.as_of < o.level_as_of AS stale,"                       \
	"   o.level_as_of AS old_as_of, o.stock AS old_stock, o.available AS old_available,"        \
	"   ROW(o.supplier_sku, o.cost, o.shipping_cost, o.stock, o.lead_time_days, o.ships_to,"    \
	"       o.available) AS old_row,"                                                          \
	"   least(2147483647, greatest(0, v.level::bigint + coalesce(mv.delta, 0)))::integer AS stock," \
	"   coalesce(v.supplier_sku, o.supplier_sku) AS supplier_sku,"                            \
	"   coalesce(v.cost, o.cost) AS cost,"                                                    \
	"   coalesce(v.shipping_cost, o.shipping_cost) AS shipping_cost,"                         \
	"   coalesce(v.lead_time_days, o.lead_time_days) AS lead_time_days,"                      \
	"   CASE WHEN v.ships_to IS NULL THEN o.ships_to WHEN v.ships_to = '*' THEN NULL"         \
	"        ELSE string_to_array(v.ships_to, ';')::char(2)[] END AS ships_to"                 \
	"   FROM v JOIN offers o ON o.id = v.offer_id CROSS JOIN g"                                \
	"   LEFT JOIN mv ON mv.offer_id = o.id"                                                   \
	"   WHERE g.refused IS NULL AND v.level IS NOT NULL),"                                    \
	" c AS (SELECT n.*, n.old_row IS NOT DISTINCT FROM ROW(n.supplier_sku, n.cost,"            \
	"   n.shipping_cost, n.stock, n.lead_time_days, n.ships_to, true) AS same FROM n),"        \
	" u AS (UPDATE offers o SET stock = c.stock, supplier_sku = c.supplier_sku, cost = c.cost," \
	"   shipping_cost = c.shipping_cost, lead_time_days = c.lead_time_days,"                  \
	"   ships_to = c.ships_to, available = true, level_as_of = c.as_of,"                       \
	"   updated_at = CASE WHEN c.same THEN o.updated_at ELSE now() END"                        \
	"   FROM c WHERE o.id = c.id AND NOT c.stale"                                             \
	"     AND NOT (c.same AND c.old_as_of IS NOT DISTINCT FROM c.as_of)),"                      \
	" k AS (INSERT INTO sku_changes (sku)"                                                     \
	"   SELECT DISTINCT c.sku FROM c"                                                          \
	"    WHERE NOT c.stale AND c.stock > 0 AND (c.stock > c.old_stock OR NOT c.old_available)" \
	"   ON CONFLICT (sku) DO UPDATE SET changed_at = now() RETURNING 1)"                       \
	" SELECT g.refused,"                                                                      \
	"   count(*) FILTER (WHERE NOT c.stale AND NOT c.same) AS applied,"                        \
	"   count(*) FILTER (WHERE c.stale) AS stale,"                                            \
	"   count(*) FILTER (WHERE NOT c.stale AND c.same) AS unchanged,"                          \
	"   CASE WHEN g.refused IS NULL THEN (SELECT count(*) FROM v) - count(c.id) ELSE 0 END"     \
	"     AS skipped,"                                                                        \
	"   (SELECT count(*) FROM k) AS skus"                                                     \
	" FROM g LEFT JOIN c ON true GROUP BY g.refused"

const char stock_lock_sql[] =
	"SELECT count(*) FROM (SELECT id FROM offers WHERE id = ANY ($1::bigint[])"
	" ORDER BY id FOR UPDATE) l";

const char stock_apply_sql[] = STOCK_APPLY(
	"unnest($2::bigint[], $3::int[], $4::text[], $5::numeric(20, 4)[], $6::numeric(20, 4)[],"
	" $7::int[], $8::text[]) AS i(" STOCK_INPUT_COLS ")");

const char stock_levels_create_sql[] =
	"CREATE TEMP TABLE stock_levels (offer_id bigint, level integer, supplier_sku text,"
	" cost numeric(20, 4), shipping_cost numeric(20, 4), lead_time_days integer, ships_to text)"
	" ON COMMIT DROP";

/* Locking a million rows one by one writes each of them; SHARE ROW
 * EXCLUSIVE is one lock that waits for the transactions writing offers
 * and holds new ones back until COMMIT, and lets readers (routing's
 * candidates) through. */
const char stock_levels_lock_sql[] = "LOCK TABLE offers IN SHARE ROW EXCLUSIVE MODE";

const char stock_levels_apply_sql[] = STOCK_APPLY("stock_levels");

const char stock_check_sql[] =
	"SELECT " STOCK_REFUSAL " AS refused, to_json(least(" STOCK_AS_OF ", now())) #>> '{}' AS as_of";

const char stock_notify_sql[] = "NOTIFY dropship_stock";

const struct db_stmt_def stock_stmts[] = {
	{ "stock_check", stock_check_sql },
	{ "stock_lock", stock_lock_sql },
	{ "stock_apply", stock_apply_sql },
	{ NULL, NULL },
};

static const char *const stock_col_names[STOCK_NCOLS] = {
	"refused", "applied", "stale", "unchanged", "skipped", "skus",
};

static const char *const stock_refusal_names[] = {
	[STOCK_TOO_OLD] = "too_old",
	[STOCK_FUTURE] = "future",
};

enum stock_refusal stock_refusal_of(const char *text)
{
	if (!text || !*text)
		return STOCK_OK;
	for (size_t i = 0; i < sizeof stock_refusal_names / sizeof stock_refusal_names[0]; i++)
		if (stock_refusal_names[i] && strcmp(text, stock_refusal_names[i]) == 0)
			return (enum stock_refusal)i;
	return STOCK_REFUSAL_UNKNOWN;
}

const char *stock_refusal_text(enum stock_refusal r)
{
	switch (r) {
	case STOCK_OK:
		return "may be applied";
	case STOCK_TOO_OLD:
		return "is more than " STOCK_STR(STOCK_MAX_AGE_DAYS) " days ago (reservations are kept "
		       "for " STOCK_STR(STOCK_MAX_AGE_DAYS) " days, so a level that old cannot be applied)";
	case STOCK_FUTURE:
		return "is more than " STOCK_STR(STOCK_MAX_AHEAD_S) " seconds ahead of the database's clock";
	case STOCK_REFUSAL_UNKNOWN:
		break;
	}
	return "was refused by the database";
}

/* A count column: digits only. */
static int stock_count(const PGresult *res, int col, long long *out)
{
	const char *v = PQgetvalue(res, 0, col);
	char *end;
	if (PQgetisnull(res, 0, col) || v[0] < '0' || v[0] > '9')
		return -1;
	*out = strtoll(v, &end, 10);
	return *end == '\0' ? 0 : -1;
}

int stock_decode(const PGresult *res, struct stock_result *out)
{
	memset(out, 0, sizeof *out);
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    PQnfields(res) != STOCK_NCOLS)
		return -1;
	for (int c = 0; c < STOCK_NCOLS; c++)
		if (PQfnumber(res, stock_col_names[c]) != c)
			return -1;
	out->refused = PQgetisnull(res, 0, STOCK_COL_REFUSED)
	                       ? STOCK_OK : stock_refusal_of(PQgetvalue(res, 0, STOCK_COL_REFUSED));
	if (stock_count(res, STOCK_COL_APPLIED, &out->applied) < 0 ||
	    stock_count(res, STOCK_COL_STALE, &out->stale) < 0 ||
	    stock_count(res, STOCK_COL_UNCHANGED, &out->unchanged) < 0 ||
	    stock_count(res, STOCK_COL_SKIPPED, &out->skipped) < 0 ||
	    stock_count(res, STOCK_COL_SKUS, &out->skus) < 0)
		return -1;
	return 0;
}

int stock_format_time(int64_t sec, long nsec, char *buf, size_t cap)
{
	struct tm tm;
	time_t t = (time_t)sec;
	if (cap < STOCK_TIME_LEN || nsec < 0 || nsec > 999999999L || (int64_t)t != sec ||
	    !gmtime_r(&t, &tm) || tm.tm_year < 1 - 1900 || tm.tm_year > 9999 - 1900)
		return -1;
	int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
	                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, nsec / 1000);
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

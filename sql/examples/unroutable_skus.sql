-- SKUs most often unroutable: every routing decision that found no
-- supplier in the last N days, by SKU and reason — including lines that
-- were routed later (after a catalog import or on re-routing), so this
-- shows where the catalog falls short, not only what is still waiting
-- (that is `dropshipctl report unroutable_lines`).
--
--   psql -d dropship -v days=30 -f sql/examples/unroutable_skus.sql
--
-- days: how far back (default 30). Reasons: no_offer (nobody sells it),
-- no_region (nobody ships there), out_of_stock, no_sku (the store sent a
-- line without SKU), no_address (nowhere to ship to).
\if :{?days}
\else
\set days 30
\endif

SELECT d.sku,
       d.reason,
       count(*) AS decisions,
       count(DISTINCT d.external_order_id) AS orders,
       sum(d.quantity) AS units,
       max(d.decided_at) AS last_seen
  FROM reporting.routing_history d
 WHERE d.decided_at >= now() - :'days'::int * interval '1 day'
   AND d.reason IS NOT NULL
 GROUP BY d.sku, d.reason
 ORDER BY decisions DESC, units DESC
 LIMIT 50;

-- Orders stuck longer than N hours: not yet shipped, delivered or cancelled,
-- and unchanged for N hours — an order waiting for a supplier to answer,
-- for stock, or for someone to look at it (needs_attention). Oldest first,
-- with the suppliers it waits on.
--
--   psql -d dropship -v hours=48 -f sql/examples/stuck_orders.sql
--
-- hours: how long unchanged (default 48).
\if :{?hours}
\else
\set hours 48
\endif

SELECT o.store,
       o.external_id,
       o.order_id,
       o.status,
       o.created_at,
       round((extract(epoch FROM now() - o.updated_at) / 3600)::numeric, 1) AS hours_unchanged,
       (SELECT string_agg(DISTINCT r.supplier || ' ' || r.status, ', ')
          FROM reporting.requests r
         WHERE r.order_id = o.order_id
           AND r.status IN ('pending', 'sent', 'accepted')) AS waiting_on
  FROM reporting.orders o
 WHERE o.status IN ('received', 'routed', 'partially_routed', 'needs_attention', 'partially_shipped')
   AND o.updated_at < now() - :'hours'::int * interval '1 hour'
 ORDER BY o.updated_at
 LIMIT 200;

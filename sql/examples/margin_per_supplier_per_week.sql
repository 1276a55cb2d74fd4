-- Margin per supplier per week: what the store charged for the lines each
-- supplier fulfilled, what the supplier charged (landed unit cost: product
-- plus shipping, as routed), and the difference. Cancelled lines are left
-- out; weeks are ISO weeks (Monday to Sunday, UTC) of the order's arrival.
-- Mixed currencies are kept apart.
--
--   psql -d dropship -v weeks=12 -f sql/examples/margin_per_supplier_per_week.sql
--
-- weeks: how many weeks back, this one included (default 12).
\if :{?weeks}
\else
\set weeks 12
\endif
SET TIME ZONE 'UTC';

SELECT date_trunc('week', l.created_at)::date AS week,
       l.supplier,
       l.currency,
       count(*) AS lines,
       sum(l.quantity) AS units,
       sum(l.quantity * l.unit_price)::numeric(20, 2) AS revenue,
       sum(l.quantity * l.unit_cost)::numeric(20, 2) AS cost,
       (sum(l.quantity * l.unit_price) - sum(l.quantity * l.unit_cost))::numeric(20, 2) AS margin,
       round(100 * (sum(l.quantity * l.unit_price) - sum(l.quantity * l.unit_cost))
             / nullif(sum(l.quantity * l.unit_price), 0), 1) AS margin_pct
  FROM reporting.order_lines l
 WHERE l.created_at >= date_trunc('week', now()) - (:'weeks'::int - 1) * interval '1 week'
   AND l.supplier IS NOT NULL
   AND l.status <> 'cancelled'
 GROUP BY 1, 2, 3
 ORDER BY week DESC, margin DESC NULLS LAST;

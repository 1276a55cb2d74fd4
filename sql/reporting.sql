-- The reporting schema: read-only views for operators, recreated by every
-- `dropshipctl migrate` (so they may change without a migration file).
-- The role dropship_reporting may read these views and nothing else: no
-- secrets, no raw payloads, no base tables. Do not keep objects of your own
-- in this schema: it is dropped and rebuilt.
--
-- Views that aggregate history look at a rolling window (named in their
-- COMMENT), so they answer in well under a second on a database of
-- millions of orders; sql/examples/ has queries over any period.

DROP SCHEMA IF EXISTS reporting CASCADE;
CREATE SCHEMA reporting;
COMMENT ON SCHEMA reporting IS 'dropship operator reports (recreated by dropshipctl migrate)';

-- Roles are cluster-wide: several databases (or concurrent migrations)
-- may race to create it, and the loser must not fail.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dropship_reporting') THEN
        CREATE ROLE dropship_reporting NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END $$;

-- Age of a point in time in hours, for the duration columns.
CREATE FUNCTION reporting.hours(from_ts timestamptz, to_ts timestamptz) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN round((extract(epoch FROM to_ts - from_ts) / 3600)::numeric, 2);

CREATE VIEW reporting.daily_orders AS
SELECT (o.created_at AT TIME ZONE 'UTC')::date AS day, s.code AS store, o.currency,
       count(*) AS orders,
       coalesce(sum(l.lines), 0)::bigint AS lines,
       coalesce(sum(l.units), 0)::bigint AS units,
       coalesce(sum(l.revenue), 0)::numeric(20, 2) AS revenue,
       coalesce(sum(l.cost), 0)::numeric(20, 2) AS cost,
       count(*) FILTER (WHERE o.status = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE o.status = 'needs_attention') AS needs_attention,
       coalesce(sum(l.unroutable_lines), 0)::bigint AS unroutable_lines
  FROM orders o
  JOIN stores s ON s.id = o.store_id
  -- Each order's lines through the primary key: a month of orders reads
  -- only their lines, never the whole table.
  CROSS JOIN LATERAL (
      SELECT count(*) AS lines,
             sum(l.quantity) AS units,
             sum(l.quantity * l.unit_price) AS revenue,
             sum(l.quantity * l.unit_cost) FILTER (WHERE l.supplier_id IS NOT NULL) AS cost,
             count(*) FILTER (WHERE l.status = 'unroutable') AS unroutable_lines
        FROM order_lines l
       WHERE l.store_id = o.store_id AND l.order_id = o.id) l
 WHERE o.created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '29 days'
 GROUP BY 1, s.code, o.currency
 ORDER BY 1 DESC, s.code, o.currency;
COMMENT ON VIEW reporting.daily_orders IS
    'orders, lines, units, revenue and supplier cost per UTC day and store, last 30 days';

CREATE VIEW reporting.order_status_summary AS
SELECT o.status,
       count(*) AS orders,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct,
       min(o.updated_at) AS oldest_change,
       reporting.hours(min(o.updated_at), now()) AS oldest_hours
  FROM orders o
 GROUP BY o.status
 ORDER BY array_position(ARRAY['received', 'routed', 'partially_routed', 'needs_attention',
                               'partially_shipped', 'shipped', 'delivered', 'cancelled'], o.status);
COMMENT ON VIEW reporting.order_status_summary IS
    'orders in each status, with the longest time one has been in it';

CREATE VIEW reporting.supplier_performance AS
WITH r AS (
    SELECT r.supplier_id, r.created_at, r.accepted_at, r.shipped_at,
           (r.status = 'rejected' OR r.rejected_at IS NOT NULL) AS rejected
      FROM fulfillment_requests r
     WHERE r.created_at >= now() - interval '30 days'
)
SELECT s.code AS supplier,
       count(r.supplier_id) AS requests,
       count(r.accepted_at) AS accepted,
       count(*) FILTER (WHERE r.rejected) AS rejected,
       count(r.shipped_at) AS shipped,
       round(100.0 * count(r.accepted_at) / nullif(count(r.supplier_id), 0), 1) AS acceptance_rate,
       round(100.0 * count(*) FILTER (WHERE r.rejected) / nullif(count(r.supplier_id), 0), 1) AS rejection_rate,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY reporting.hours(r.created_at, r.accepted_at))::numeric, 2)
           AS median_hours_to_accept,
       round(percentile_cont(0.9) WITHIN GROUP (ORDER BY reporting.hours(r.created_at, r.accepted_at))::numeric, 2)
           AS p90_hours_to_accept,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY reporting.hours(r.created_at, r.shipped_at))::numeric, 2)
           AS median_hours_to_ship,
       round(percentile_cont(0.9) WITHIN GROUP (ORDER BY reporting.hours(r.created_at, r.shipped_at))::numeric, 2)
           AS p90_hours_to_ship,
       round(100.0 * count(*) FILTER (WHERE r.shipped_at <= r.created_at + s.ship_within)
             / nullif(count(r.shipped_at), 0), 1) AS on_time_rate
  FROM suppliers s
  LEFT JOIN r ON r.supplier_id = s.id
 GROUP BY s.id, s.code
 ORDER BY s.code;
COMMENT ON VIEW reporting.supplier_performance IS
    'per supplier, requests of the last 30 days: acceptance, rejection, hours to accept and ship, on-time rate';

-- The scorecard routing reads (supplier_scores, kept by dropshipd every
-- [score] refresh_ms over the last [score] window_s): a row per supplier,
-- read from a table of one row per supplier, so it costs nothing however
-- long the history. The smoothed rates are what routing uses; the raw
-- ones are the window's counts alone.
CREATE VIEW reporting.supplier_scorecard AS
SELECT s.code AS supplier, s.active,
       sc.requests, sc.answered, sc.accepted, sc.rejected, sc.failed, sc.judged, sc.on_time,
       round(sc.acceptance_ppm / 10000.0, 2) AS acceptance_rate,
       round(100.0 * sc.accepted / nullif(sc.answered, 0), 2) AS raw_acceptance_rate,
       round(100.0 * sc.rejected / nullif(sc.answered, 0), 2) AS rejection_rate,
       (SELECT string_agg(r.key || ' ' || round(100.0 * r.value::int / nullif(sc.answered, 0), 2) || '%',
                          ', ' ORDER BY r.value::int DESC, r.key)
          FROM jsonb_each_text(sc.rejected_by_reason) r) AS rejection_rate_by_reason,
       round(sc.on_time_ppm / 10000.0, 2) AS on_time_rate,
       round(100.0 * sc.on_time / nullif(sc.judged, 0), 2) AS raw_on_time_rate,
       round(100.0 * sc.failed / nullif(sc.answered, 0), 2) AS delivery_failure_rate,
       sc.median_hours_to_accept,
       sc.median_hours_to_ship,
       -- The chance of a rejection or a late shipment that balanced prices.
       round(100 - sc.acceptance_ppm::numeric * sc.on_time_ppm / 10000000000, 2) AS risk,
       sc.prior_weight,
       sc.window_start,
       sc.refreshed_at
  FROM suppliers s
  LEFT JOIN supplier_scores sc ON sc.supplier_id = s.id
 ORDER BY s.code;
COMMENT ON VIEW reporting.supplier_scorecard IS
    'per supplier, the scorecard routing uses: smoothed and raw acceptance and on-time rates, rejections by reason, risk';

CREATE VIEW reporting.unroutable_lines AS
SELECT l.sku, l.reason,
       count(*) AS lines,
       count(DISTINCT (l.store_id, l.order_id)) AS orders,
       sum(l.quantity) AS units,
       max(o.created_at) AS last_seen
  FROM order_lines l
  JOIN orders o ON o.store_id = l.store_id AND o.id = l.order_id
 WHERE l.status = 'unroutable'
 GROUP BY l.sku, l.reason
 ORDER BY count(*) DESC, l.sku NULLS FIRST, l.reason;
COMMENT ON VIEW reporting.unroutable_lines IS
    'lines waiting for a supplier, by SKU and reason (no_offer, no_region, out_of_stock, no_sku, no_address)';

CREATE VIEW reporting.fulfillment_backlog AS
WITH r AS (
    SELECT r.supplier_id, r.status, r.created_at, now() - r.created_at AS age
      FROM fulfillment_requests r
     WHERE r.status IN ('pending', 'sent', 'accepted')
), b AS (
    SELECT r.*,
           CASE WHEN age < interval '1 hour' THEN 1 WHEN age < interval '6 hours' THEN 2
                WHEN age < interval '24 hours' THEN 3 WHEN age < interval '3 days' THEN 4
                WHEN age < interval '7 days' THEN 5 ELSE 6 END AS bucket
      FROM r
)
SELECT s.code AS supplier,
       (ARRAY['< 1h', '1-6h', '6-24h', '1-3d', '3-7d', '>= 7d'])[b.bucket] AS age,
       count(*) AS requests,
       count(*) FILTER (WHERE b.status = 'pending') AS pending,
       count(*) FILTER (WHERE b.status = 'sent') AS sent,
       count(*) FILTER (WHERE b.status = 'accepted') AS accepted,
       count(*) FILTER (WHERE b.age > s.ship_within) AS overdue,
       min(b.created_at) AS oldest
  FROM b JOIN suppliers s ON s.id = b.supplier_id
 GROUP BY s.code, b.bucket
 ORDER BY s.code, b.bucket;
COMMENT ON VIEW reporting.fulfillment_backlog IS
    'requests not yet shipped, by supplier and age; overdue = older than the supplier''s ship_within';

CREATE VIEW reporting.failed_deliveries AS
SELECT x.id AS outbox_id, x.kind,
       coalesce(sp.code, st.code) AS recipient,
       st.code AS store,
       o.external_id AS external_order_id,
       x.request_id,
       x.attempts,
       x.last_status,
       -- A refusal has no transport error: show the status and what the peer said.
       coalesce(x.last_error, 'HTTP ' || x.last_status || ': ' || left(x.last_response, 200)) AS last_error,
       last.finished_at AS failed_at
  FROM outbox x
  JOIN stores st ON st.id = x.store_id
  LEFT JOIN suppliers sp ON sp.id = x.supplier_id
  LEFT JOIN fulfillment_requests r ON r.id = x.request_id
  LEFT JOIN orders o ON o.store_id = r.store_id AND o.id = r.order_id
  LEFT JOIN LATERAL (SELECT a.finished_at FROM outbox_attempts a WHERE a.outbox_id = x.id
                      ORDER BY a.attempt DESC LIMIT 1) last ON true
 WHERE x.state = 'failed'
 ORDER BY last.finished_at DESC NULLS LAST, x.id DESC;
COMMENT ON VIEW reporting.failed_deliveries IS
    'outbound messages that were given up on (retries exhausted or refused), with the last error';

CREATE VIEW reporting.routing_history AS
SELECT d.decided_at,
       d.order_id,
       st.code AS store,
       o.external_id AS external_order_id,
       d.line_no,
       l.sku,
       l.quantity,
       d.attempt,
       d.policy,
       sp.code AS supplier,
       (ch.cand->>'unit_cost')::numeric AS unit_cost,
       ru.cand->>'supplier' AS runner_up,
       (ru.cand->>'unit_cost')::numeric AS runner_up_unit_cost,
       ((ru.cand->>'unit_cost')::numeric - (ch.cand->>'unit_cost')::numeric) * l.quantity AS cost_difference,
       d.reason,
       d.consolidated,
       -- Landed unit cost plus the supplier's risk times the store's penalty
       -- (decisions made before the scorecard have none).
       (ch.cand->>'expected_cost')::numeric AS expected_unit_cost,
       (ru.cand->>'expected_cost')::numeric AS runner_up_expected_unit_cost
  FROM routing_decisions d
  JOIN order_lines l ON l.store_id = d.store_id AND l.order_id = d.order_id AND l.line_no = d.line_no
  JOIN orders o ON o.store_id = d.store_id AND o.id = d.order_id
  JOIN stores st ON st.id = d.store_id
  LEFT JOIN suppliers sp ON sp.id = d.supplier_id
  LEFT JOIN LATERAL (SELECT x.cand FROM jsonb_array_elements(d.candidates) x(cand)
                      WHERE (x.cand->>'offer_id')::bigint = d.offer_id LIMIT 1) ch ON true
  -- The runner-up: the best other eligible offer under the line's policy.
  LEFT JOIN LATERAL (SELECT y.cand FROM jsonb_array_elements(d.candidates) y(cand)
                      WHERE (y.cand->>'eligible')::boolean
                        AND (y.cand->>'offer_id')::bigint IS DISTINCT FROM d.offer_id
                      ORDER BY (y.cand->>'below_floor')::boolean IS TRUE,
                               CASE d.policy WHEN 'fastest' THEN (y.cand->>'lead_time_days')::numeric
                                             WHEN 'priority' THEN (y.cand->>'priority')::numeric
                                             WHEN 'balanced' THEN (y.cand->>'expected_cost')::numeric
                                             ELSE (y.cand->>'unit_cost')::numeric END,
                               CASE d.policy WHEN 'balanced' THEN (y.cand->>'lead_time_days')::int END,
                               (y.cand->>'unit_cost')::numeric, (y.cand->>'lead_time_days')::int,
                               y.cand->>'supplier'
                      LIMIT 1) ru ON true
;
COMMENT ON VIEW reporting.routing_history IS
    'rows: every routing decision with its runner-up; filter by decided_at';

CREATE VIEW reporting.routing_decisions AS
SELECT * FROM reporting.routing_history
 WHERE decided_at >= now() - interval '24 hours'
 -- decided_at first, from its index; one transaction's decisions share it.
 ORDER BY decided_at DESC, order_id, line_no, attempt;
COMMENT ON VIEW reporting.routing_decisions IS
    'per order line, last 24 hours: chosen supplier, policy, runner-up and what it would have cost more';

-- Orders stuck without a supplier: lines unroutable (whatever the reason),
-- or fulfillment requests whose delivery was given up while they still
-- hold routed lines (a request whose lines were re-routed or given up no
-- longer strands its order). Both read partial indexes: the unroutable
-- lines, and the failed outbox messages.
CREATE VIEW reporting.stranded_orders AS
WITH z AS (
    -- a line no supplier took
    SELECT l.store_id, l.order_id, coalesce(l.reason, 'unknown') AS reason, l.line_no, NULL::uuid AS request_id
      FROM order_lines l
     WHERE l.status = 'unroutable'
    UNION ALL
    -- a request whose delivery was given up, its lines still on it
    SELECT r.store_id, r.order_id, 'delivery_failed', NULL, r.id
      FROM outbox x
      JOIN fulfillment_requests r ON r.id = x.request_id
     WHERE x.state = 'failed' AND x.kind = 'fulfillment.requested' AND r.status = 'failed'
       AND EXISTS (SELECT FROM order_lines l WHERE l.request_id = r.id AND l.status = 'routed')
    UNION ALL
    -- an order flagged for a person: a cancellation its supplier never got
    -- (it may still ship), a platform never told of a parcel, or any of the above
    SELECT o.store_id, o.id, coalesce(k.reason, 'needs_attention'), NULL, NULL
      FROM orders o
      LEFT JOIN LATERAL (
          SELECT CASE x.kind WHEN 'fulfillment.cancel_requested' THEN 'cancel_not_delivered'
                             ELSE 'platform_not_updated' END AS reason
            FROM fulfillment_requests r
            JOIN outbox x ON x.request_id = r.id
           WHERE r.store_id = o.store_id AND r.order_id = o.id AND x.state = 'failed'
             AND x.kind IN ('fulfillment.cancel_requested', 'platform.fulfillment', 'platform.completed')) k
        ON true
     WHERE o.status = 'needs_attention'
), s AS (
    SELECT store_id, order_id, count(DISTINCT line_no) AS unroutable_lines,
           count(DISTINCT request_id) AS failed_requests, array_agg(DISTINCT reason ORDER BY reason) AS reasons
      FROM z
     GROUP BY store_id, order_id
)
SELECT o.id AS order_id, st.code AS store, o.external_id AS external_order_id, o.status,
       -- the plain flag only when nothing more precise says why
       array_to_string(CASE WHEN cardinality(s.reasons) > 1 THEN array_remove(s.reasons, 'needs_attention')
                            ELSE s.reasons END, ', ') AS reasons,
       s.unroutable_lines, s.failed_requests,
       o.created_at,
       reporting.hours(o.created_at, now()) AS age_hours
  FROM s
  JOIN orders o ON o.store_id = s.store_id AND o.id = s.order_id
  JOIN stores st ON st.id = o.store_id
 ORDER BY o.created_at, o.id;
COMMENT ON VIEW reporting.stranded_orders IS
    'orders with a line no supplier took, a fulfillment request whose delivery failed, or flagged needs_attention; oldest first, with why';

-- Row-level views for questions of your own (sql/examples/): the facts of
-- orders, lines and requests without secrets, payloads or customer contact
-- details. Filter them by created_at: they cover all history.
CREATE VIEW reporting.orders AS
SELECT o.id AS order_id, s.code AS store, o.external_id, o.name, o.status, o.currency,
       o.ship_country, o.created_at, o.updated_at
  FROM orders o JOIN stores s ON s.id = o.store_id;
COMMENT ON VIEW reporting.orders IS
    'rows: every order (no customer details); filter by created_at';

CREATE VIEW reporting.order_lines AS
SELECT o.id AS order_id, s.code AS store, o.external_id AS external_order_id,
       o.status AS order_status, o.currency, o.created_at,
       l.line_no, l.sku, l.title, l.quantity, l.unit_price, l.status, l.reason,
       sp.code AS supplier, l.unit_cost, l.request_id
  FROM order_lines l
  JOIN orders o ON o.store_id = l.store_id AND o.id = l.order_id
  JOIN stores s ON s.id = l.store_id
  LEFT JOIN suppliers sp ON sp.id = l.supplier_id;
COMMENT ON VIEW reporting.order_lines IS
    'rows: every order line with its price, supplier and landed unit cost; filter by created_at';

CREATE VIEW reporting.requests AS
SELECT r.id AS request_id, o.id AS order_id, s.code AS store, o.external_id AS external_order_id,
       sp.code AS supplier,
       r.status, r.reason, r.created_at, r.accepted_at, r.shipped_at, r.rejected_at,
       r.created_at + sp.accept_within AS accept_deadline,
       r.created_at + sp.ship_within AS ship_deadline,
       r.carrier, r.tracking_number, r.updated_at
  FROM fulfillment_requests r
  JOIN orders o ON o.store_id = r.store_id AND o.id = r.order_id
  JOIN stores s ON s.id = r.store_id
  JOIN suppliers sp ON sp.id = r.supplier_id;
COMMENT ON VIEW reporting.requests IS
    'rows: every fulfillment request with its accept/ship times and deadlines; filter by created_at';

GRANT USAGE ON SCHEMA reporting TO dropship_reporting;
GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO dropship_reporting;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA reporting TO dropship_reporting;

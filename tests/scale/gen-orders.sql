-- Synthetic history for measuring the reporting views at scale:
--   psql -v orders=1000000 -f tests/scale/gen-orders.sql
-- 3 stores, 20 suppliers, 10,000 SKUs at 3 suppliers each; :orders orders
-- over the last 365 days with 1..5 lines each, one routing decision per
-- line, one request per (order, supplier), the callbacks' events, one
-- outbox row per request and its attempts. Status mix of a live shop:
-- most delivered, some in flight, a few rejected, failed or unroutable.
-- Foreign keys and the append-only trigger are skipped while loading.
\set ON_ERROR_STOP on
SET session_replication_role = replica;
SET synchronous_commit = off;
SELECT setseed(0.42);

INSERT INTO stores (code, secrets, policy)
SELECT 'store' || i, ARRAY['whsec_c2NhbGUtdGVzdC1zZWNyZXQtMTIzNDU2'], (ARRAY['cheapest', 'fastest', 'priority'])[i]
  FROM generate_series(1, 3) i;

INSERT INTO suppliers (code, endpoint, secrets, priority, ship_within)
SELECT 'sup' || lpad(i::text, 2, '0'), 'https://sup' || i || '.example/orders',
       ARRAY['whsec_c2NhbGUtdGVzdC1zZWNyZXQtMTIzNDU2'], 10 * i, interval '48 hours'
  FROM generate_series(1, 20) i;

-- SKU k is offered by suppliers k%20, (k+7)%20 and (k+13)%20.
INSERT INTO offers (supplier_id, sku, supplier_sku, cost, shipping_cost, stock, lead_time_days)
SELECT s.id, 'SKU-' || k, 'S' || s.id || '-' || k, 5 + (k % 50) + s.id * 0.25, 2.5, 1000000, 1 + (s.id % 7)
  FROM generate_series(1, 10000) k
  CROSS JOIN LATERAL (SELECT id FROM suppliers
                       WHERE id IN (1 + k % 20, 1 + (k + 7) % 20, 1 + (k + 13) % 20)) s;

CREATE TEMP TABLE gen_orders AS
SELECT i AS id, 1 + i % 3 AS store_id,
       now() - random() * interval '365 days' AS created_at,
       random() AS r, 1 + (i::bigint * 7919) % 5 AS nlines
  FROM generate_series(1, :orders) i;

INSERT INTO orders (store_id, id, external_id, status, currency, placed_at, customer_email,
                    customer_name, ship_name, ship_line1, ship_city, ship_postal_code,
                    ship_country, raw, webhook_id, created_at, updated_at)
OVERRIDING SYSTEM VALUE
SELECT g.store_id, g.id, 'ext-' || g.id,
       CASE WHEN g.r < 0.03 THEN 'needs_attention' WHEN g.r < 0.08 THEN 'cancelled'
            WHEN g.created_at > now() - interval '3 days' AND g.r < 0.5 THEN 'routed'
            WHEN g.created_at > now() - interval '10 days' AND g.r < 0.7 THEN 'shipped'
            WHEN g.r < 0.10 THEN 'partially_shipped' ELSE 'delivered' END,
       'EUR', g.created_at, 'customer' || g.id || '@example.com', 'Customer ' || g.id,
       'Customer ' || g.id, g.id || ' Main Street', 'Berlin', '10115', 'DE',
       jsonb_build_object('id', 'ext-' || g.id, 'currency', 'EUR',
                          'customer', jsonb_build_object('email', 'customer' || g.id || '@example.com'),
                          'note', repeat('x', 400)),
       'msg_' || g.id, g.created_at, g.created_at + interval '1 hour'
  FROM gen_orders g;
SELECT setval(pg_get_serial_sequence('orders', 'id'), :orders);

CREATE TEMP TABLE gen_lines AS
SELECT o.store_id, o.id AS order_id, n AS line_no, o.status AS order_status, o.created_at,
       1 + (o.id * 31 + n * 17) % 10000 AS k, 1 + (o.id + n) % 3 AS qty,
       random() AS r
  FROM orders o
  JOIN gen_orders g ON g.id = o.id
  CROSS JOIN LATERAL generate_series(1, g.nlines) n;

-- A line goes to the first of its SKU's suppliers, except every fifth
-- order whose even lines go to the second: some orders are split.
INSERT INTO order_lines (store_id, order_id, line_no, sku, quantity, unit_price, title, status,
                         reason, supplier_id, offer_id, reserved, unit_cost)
SELECT l.store_id, l.order_id, l.line_no, 'SKU-' || l.k, l.qty, 19.99 + (l.k % 30), 'Item ' || l.k,
       CASE WHEN l.order_status = 'needs_attention' AND l.line_no = 1 THEN 'unroutable'
            WHEN l.order_status = 'cancelled' THEN 'cancelled'
            WHEN l.order_status = 'delivered' THEN 'delivered'
            WHEN l.order_status IN ('shipped', 'partially_shipped') THEN 'shipped'
            ELSE 'routed' END,
       CASE WHEN l.order_status = 'needs_attention' AND l.line_no = 1
            THEN (ARRAY['no_offer', 'out_of_stock', 'no_region', 'no_sku'])[1 + l.k % 4] END,
       f.supplier_id, f.id, l.qty, f.cost + f.shipping_cost
  FROM gen_lines l
  LEFT JOIN LATERAL (SELECT f.* FROM offers f WHERE f.sku = 'SKU-' || l.k
                      ORDER BY f.supplier_id
                      OFFSET CASE WHEN l.order_id % 5 = 0 AND l.line_no % 2 = 0 THEN 1 ELSE 0 END
                      LIMIT 1) f ON NOT (l.order_status = 'needs_attention' AND l.line_no = 1);

INSERT INTO routing_decisions (store_id, order_id, line_no, policy, supplier_id, offer_id, reason,
                               candidates, search, decided_at)
SELECT l.store_id, l.order_id, l.line_no, s.policy, l.supplier_id, l.offer_id,
       CASE WHEN l.supplier_id IS NULL THEN l.reason END,
       (SELECT jsonb_agg(jsonb_build_object('offer_id', f.id, 'supplier', 'sup' || lpad(f.supplier_id::text, 2, '0'),
                                             'unit_cost', (f.cost + f.shipping_cost)::text,
                                             'lead_time_days', f.lead_time_days, 'priority', 10 * f.supplier_id,
                                             'stock', f.stock, 'eligible', l.supplier_id IS NOT NULL,
                                             'why_not', NULL))
          FROM offers f WHERE f.sku = l.sku),
       'per_line', o.created_at
  FROM order_lines l
  JOIN orders o ON o.store_id = l.store_id AND o.id = l.order_id
  JOIN stores s ON s.id = l.store_id;

-- Requests: status follows the order's; one in 50 was rejected first and
-- re-routed, one in 200 never got through (failed).
INSERT INTO fulfillment_requests (store_id, order_id, supplier_id, status, reason, created_at,
                                  updated_at, carrier, tracking_number)
SELECT q.store_id, q.order_id, q.supplier_id,
       CASE WHEN q.order_id % 200 = 0 THEN 'failed'
            WHEN q.order_id % 50 = 0 THEN 'rejected'
            WHEN o.status = 'cancelled' THEN 'cancelled'
            WHEN o.status = 'delivered' THEN 'delivered'
            WHEN o.status IN ('shipped', 'partially_shipped') THEN 'shipped'
            WHEN o.created_at > now() - interval '1 day' THEN 'sent'
            ELSE 'accepted' END,
       CASE WHEN q.order_id % 200 = 0 THEN 'delivery_failed'
            WHEN q.order_id % 50 = 0 THEN 'out_of_stock' END,
       o.created_at, o.created_at + interval '1 hour',
       CASE WHEN o.status IN ('delivered', 'shipped', 'partially_shipped') THEN 'UPS' END,
       CASE WHEN o.status IN ('delivered', 'shipped', 'partially_shipped') THEN '1Z' || q.order_id END
  FROM (SELECT DISTINCT store_id, order_id, supplier_id FROM order_lines WHERE supplier_id IS NOT NULL) q
  JOIN orders o ON o.store_id = q.store_id AND o.id = q.order_id;

UPDATE order_lines l SET request_id = r.id
  FROM fulfillment_requests r
 WHERE r.store_id = l.store_id AND r.order_id = l.order_id AND r.supplier_id = l.supplier_id;

-- Events: accepted after 1..12 h, shipped 12..84 h after the request
-- (some late against ship_within 48 h), delivered 3 days later. The
-- requests' accepted_at/shipped_at/rejected_at are what migration 0008's
-- trigger would have set from these events (it is off while loading).
CREATE TEMP TABLE gen_events AS
SELECT r.id AS request_id, r.supplier_id, e.from_status, e.to_status, r.created_at + e.after AS at
  FROM fulfillment_requests r
  CROSS JOIN LATERAL (VALUES
      ('sent', 'accepted', interval '1 hour' * (1 + abs(hashint4(r.order_id::int)) % 12), 1),
      ('accepted', 'shipped', interval '1 hour' * (12 + abs(hashint4(r.order_id::int + 1)) % 72), 2),
      ('shipped', 'delivered', interval '1 hour' * (84 + abs(hashint4(r.order_id::int + 2)) % 72), 3),
      ('sent', 'rejected', interval '2 hours', 9)) e(from_status, to_status, after, step)
 WHERE (e.step = 1 AND r.status IN ('accepted', 'shipped', 'delivered'))
    OR (e.step = 2 AND r.status IN ('shipped', 'delivered'))
    OR (e.step = 3 AND r.status = 'delivered')
    OR (e.step = 9 AND r.status = 'rejected');

INSERT INTO request_events (request_id, supplier_id, webhook_id, type, from_status, to_status,
                            occurred_at, received_at, payload)
SELECT e.request_id, e.supplier_id, 'cb-' || e.request_id || '-' || e.to_status, 'fulfillment.' || e.to_status,
       e.from_status, e.to_status, e.at, e.at + interval '5 seconds',
       jsonb_build_object('type', 'fulfillment.' || e.to_status)
  FROM gen_events e;

UPDATE fulfillment_requests r
   SET accepted_at = e.accepted, shipped_at = e.shipped, rejected_at = e.rejected
  FROM (SELECT request_id, max(at) FILTER (WHERE to_status = 'accepted') AS accepted,
               max(at) FILTER (WHERE to_status = 'shipped') AS shipped,
               max(at) FILTER (WHERE to_status = 'rejected') AS rejected
          FROM gen_events GROUP BY request_id) e
 WHERE r.id = e.request_id;

INSERT INTO outbox (kind, request_id, supplier_id, store_id, idempotency_key, payload, state,
                    attempts, next_attempt_at, last_status, last_error, created_at, delivered_at)
SELECT 'fulfillment.requested', r.id, r.supplier_id, r.store_id, r.id::text,
       jsonb_build_object('type', 'fulfillment.requested', 'request_id', r.id),
       CASE WHEN r.status = 'failed' THEN 'failed' WHEN r.status = 'pending' THEN 'pending' ELSE 'delivered' END,
       CASE WHEN r.status = 'failed' THEN 12 ELSE 1 END, r.created_at,
       CASE WHEN r.status = 'failed' THEN 503 ELSE 200 END,
       CASE WHEN r.status = 'failed' THEN 'HTTP 503 from supplier' END,
       r.created_at, CASE WHEN r.status NOT IN ('failed', 'pending') THEN r.created_at + interval '1 second' END
  FROM fulfillment_requests r;

INSERT INTO outbox_attempts (outbox_id, attempt, started_at, finished_at, status, error, latency_ms)
SELECT x.id, a, x.created_at + (a - 1) * interval '10 minutes',
       x.created_at + (a - 1) * interval '10 minutes' + interval '80 ms', x.last_status, x.last_error, 80
  FROM outbox x CROSS JOIN LATERAL generate_series(1, x.attempts) a;

RESET session_replication_role;

-- The triggers were off: what fulfillment_request_due() would have set,
-- on a schema that has it (migrations/0012; an older one gets it from the
-- migration's own backfill).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
                WHERE table_name = 'fulfillment_requests' AND column_name = 'due_at') THEN
        UPDATE fulfillment_requests r
           SET due_at = r.created_at + CASE WHEN r.status = 'accepted' THEN s.ship_within ELSE s.accept_within END
          FROM suppliers s
         WHERE s.id = r.supplier_id AND r.status IN ('sent', 'accepted');
    END IF;
END $$;

VACUUM ANALYZE;

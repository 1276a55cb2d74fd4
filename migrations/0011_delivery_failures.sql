-- A fulfillment request whose message could not be delivered (a 4xx from
-- the supplier, or every attempt used up) is handled like a rejection: its
-- stock is given back and its lines are routed to the next supplier. The
-- dispatcher records the failure here in the same statement as the
-- attempt, and removes it in the transaction that re-routes the lines, so
-- a crash in between leaves the work to the next sweep, never lost.
CREATE TABLE request_failures (
    request_id uuid PRIMARY KEY REFERENCES fulfillment_requests (id),
    supplier_id bigint NOT NULL,
    cause      text NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now()
);

-- The body of a store notification (order.shipped, order.delivered,
-- order.needs_attention), built in one place for every statement that
-- queues one. request_id is the request a shipment belongs to (its lines
-- only are listed then), or NULL.
CREATE FUNCTION order_notice(p_kind text, p_store_id bigint, p_order_id bigint, p_request_id uuid)
    RETURNS jsonb LANGUAGE sql STABLE
    RETURN (SELECT jsonb_build_object('type', p_kind, 'store', st.code, 'order_id', o.id::text,
                       'external_order_id', o.external_id, 'status', o.status, 'request_id', r.id,
                       'tracking', CASE WHEN p_kind = 'order.shipped'
                           THEN jsonb_build_object('carrier', r.carrier, 'number', r.tracking_number,
                                                   'url', r.tracking_url) END,
                       'lines', (SELECT jsonb_agg(jsonb_build_object('line', l.line_no, 'sku', l.sku,
                                     'quantity', l.quantity, 'status', l.status, 'carrier', l.carrier,
                                     'tracking_number', l.tracking_number, 'tracking_url', l.tracking_url)
                                     ORDER BY l.line_no)
                                   FROM order_lines l WHERE l.store_id = o.store_id AND l.order_id = o.id
                                     AND (p_kind <> 'order.shipped' OR l.request_id = r.id)),
                       'created_at', now())
                FROM orders o JOIN stores st ON st.id = o.store_id
                  LEFT JOIN fulfillment_requests r ON r.id = p_request_id
               WHERE o.store_id = p_store_id AND o.id = p_order_id);

-- The dispatcher's sweep takes the oldest first.
CREATE INDEX request_failures_at_idx ON request_failures (failed_at);

-- Moves are pruned by age.
CREATE INDEX offer_moves_at_idx ON offer_moves (at);

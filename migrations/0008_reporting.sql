-- What the reporting views (sql/reporting.sql) need to answer in well
-- under a second over millions of orders.

-- When each request was accepted, shipped and rejected, kept on the request
-- itself so supplier_performance reads one row per request instead of
-- searching its events. Set from request_events by the trigger below: the
-- supplier's occurred_at, clamped between the request's creation and our
-- receipt (a supplier's clock cannot make it look faster or slower than we
-- saw it). The first event of each kind wins.
ALTER TABLE fulfillment_requests
    ADD COLUMN accepted_at timestamptz,
    ADD COLUMN shipped_at  timestamptz,
    ADD COLUMN rejected_at timestamptz;

-- When an event happened, as the reports count it.
CREATE FUNCTION request_event_at(request_created timestamptz, occurred timestamptz,
                                 received timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN greatest(request_created, least(coalesce(occurred, received), received));

CREATE FUNCTION request_events_stamp_request() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE fulfillment_requests r
       SET accepted_at = CASE WHEN NEW.to_status = 'accepted' THEN coalesce(r.accepted_at,
                             request_event_at(r.created_at, NEW.occurred_at, NEW.received_at)) ELSE r.accepted_at END,
           shipped_at  = CASE WHEN NEW.to_status = 'shipped' THEN coalesce(r.shipped_at,
                             request_event_at(r.created_at, NEW.occurred_at, NEW.received_at)) ELSE r.shipped_at END,
           rejected_at = CASE WHEN NEW.to_status = 'rejected' THEN coalesce(r.rejected_at,
                             request_event_at(r.created_at, NEW.occurred_at, NEW.received_at)) ELSE r.rejected_at END
     WHERE r.id = NEW.request_id AND NEW.to_status IN ('accepted', 'shipped', 'rejected');
    RETURN NULL;
END $$;
CREATE TRIGGER request_events_stamp_request
    AFTER INSERT ON request_events
    FOR EACH ROW EXECUTE FUNCTION request_events_stamp_request();

UPDATE fulfillment_requests r
   SET accepted_at = s.accepted_at, shipped_at = s.shipped_at, rejected_at = s.rejected_at
  FROM (SELECT e.request_id,
               min(request_event_at(r2.created_at, e.occurred_at, e.received_at))
                   FILTER (WHERE e.to_status = 'accepted') AS accepted_at,
               min(request_event_at(r2.created_at, e.occurred_at, e.received_at))
                   FILTER (WHERE e.to_status = 'shipped') AS shipped_at,
               min(request_event_at(r2.created_at, e.occurred_at, e.received_at))
                   FILTER (WHERE e.to_status = 'rejected') AS rejected_at
          FROM request_events e JOIN fulfillment_requests r2 ON r2.id = e.request_id
         GROUP BY e.request_id) s
 WHERE r.id = s.request_id;

-- supplier_performance: requests of the last 30 days.
CREATE INDEX fulfillment_requests_created_idx ON fulfillment_requests (created_at);
-- order_status_summary: counted from the index alone.
CREATE INDEX orders_status_idx ON orders (status, updated_at);
-- unroutable_lines: only the lines still waiting for a supplier.
CREATE INDEX order_lines_unroutable_idx ON order_lines (sku, reason) WHERE status = 'unroutable';
-- failed_deliveries: only what was given up on.
CREATE INDEX outbox_failed_idx ON outbox (id) WHERE state = 'failed';
-- routing_decisions: the last days' decisions.
CREATE INDEX routing_decisions_decided_idx ON routing_decisions (decided_at);

-- What suppliers tell us: tracking on the request, and every applied
-- callback kept in an append-only audit table.

ALTER TABLE fulfillment_requests
    ADD COLUMN carrier         text,
    ADD COLUMN tracking_number text,
    ADD COLUMN tracking_url    text;

CREATE TABLE request_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id  uuid NOT NULL REFERENCES fulfillment_requests (id),
    supplier_id bigint NOT NULL REFERENCES suppliers (id),
    webhook_id  text NOT NULL,           -- the callback's delivery id: a replay is recognised by it
    type        text NOT NULL,
    from_status text NOT NULL,
    to_status   text NOT NULL,
    occurred_at timestamptz,             -- as the supplier says
    received_at timestamptz NOT NULL DEFAULT now(),
    payload     jsonb NOT NULL,
    UNIQUE (supplier_id, webhook_id)
);
CREATE INDEX request_events_request_idx ON request_events (request_id);

-- An audit log is only ever appended to.
CREATE FUNCTION request_events_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'request_events is append-only';
END $$;
CREATE TRIGGER request_events_append_only
    BEFORE UPDATE OR DELETE ON request_events
    FOR EACH ROW EXECUTE FUNCTION request_events_append_only();

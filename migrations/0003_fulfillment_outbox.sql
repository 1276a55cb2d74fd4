-- Fulfillment requests (one per order and supplier) and the outbox that
-- carries every outbound message, written in the business transaction that
-- causes it and delivered at least once by the dispatcher.

CREATE TABLE fulfillment_requests (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),  -- the public request_id
    store_id    bigint NOT NULL,
    order_id    bigint NOT NULL,
    supplier_id bigint NOT NULL REFERENCES suppliers (id),
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sent', 'accepted', 'rejected', 'shipped',
                                  'delivered', 'cancelled', 'failed')),
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (store_id, order_id) REFERENCES orders (store_id, id)
);
CREATE INDEX fulfillment_requests_order_idx ON fulfillment_requests (store_id, order_id);
CREATE INDEX fulfillment_requests_supplier_idx ON fulfillment_requests (supplier_id, status);

ALTER TABLE order_lines ADD COLUMN request_id uuid REFERENCES fulfillment_requests (id);

CREATE TABLE outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text NOT NULL
                     CHECK (kind IN ('fulfillment.requested', 'fulfillment.cancel_requested',
                                     'order.shipped', 'order.delivered', 'order.needs_attention')),
    request_id       uuid REFERENCES fulfillment_requests (id),
    -- The target: a supplier, or else the store's callback URL.
    supplier_id      bigint REFERENCES suppliers (id),
    store_id         bigint NOT NULL REFERENCES stores (id),
    -- Same on every attempt, so receivers can deduplicate.
    idempotency_key  text NOT NULL UNIQUE,
    payload          jsonb NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    -- A claim: whoever holds the token may send and record the outcome;
    -- every update is fenced by it, and an expired lease may be reclaimed.
    lease_token      uuid,
    lease_expires_at timestamptz,
    last_status      integer,
    last_error       text,
    last_response    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_request_idx ON outbox (request_id);

CREATE TABLE outbox_attempts (
    outbox_id   bigint NOT NULL REFERENCES outbox (id),
    attempt     integer NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    status      integer,          -- HTTP status; NULL on a network error or timeout
    error       text,
    latency_ms  integer NOT NULL,
    PRIMARY KEY (outbox_id, attempt)
);

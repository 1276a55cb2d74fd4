-- The storefront is told what shipped: a Shopify store gets a fulfillment
-- per parcel, a WooCommerce store a customer note per parcel and the
-- status completed once the last line ships (docs/storefronts.md). Both go
-- through the outbox as messages platform.fulfillment and
-- platform.completed.

-- The platform's Admin API and the credentials dropship calls it with.
-- The credentials are secrets like stores.secrets: no reporting view
-- shows them, and the reporting role reads no base table.
ALTER TABLE stores
    ADD COLUMN platform_url    text CHECK (platform_url ~ '^https://'),
    ADD COLUMN platform_token  text,   -- Shopify: the Admin API access token
    ADD COLUMN platform_key    text,   -- WooCommerce: the REST API consumer key
    ADD COLUMN platform_secret text,   -- WooCommerce: its consumer secret
    -- Shopify: whether the platform emails the customer about a fulfillment.
    ADD COLUMN platform_notify boolean NOT NULL DEFAULT true,
    ADD CONSTRAINT stores_platform_check CHECK (platform_url IS NULL
        OR (format = 'shopify' AND platform_token IS NOT NULL)
        OR (format = 'woocommerce' AND platform_key IS NOT NULL AND platform_secret IS NOT NULL));

-- The platform's own id of each order line (Shopify's and WooCommerce's
-- line_items[].id): a parcel's lines are matched to the platform's by it.
ALTER TABLE order_lines ADD COLUMN platform_line_id text;

ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check
    CHECK (kind IN ('fulfillment.requested', 'fulfillment.cancel_requested',
                    'order.shipped', 'order.delivered', 'order.needs_attention',
                    'platform.fulfillment', 'platform.completed'));

-- A platform message is a short exchange (look, then create): every HTTP
-- call of every attempt is kept here, with the platform's id of what it
-- found or created (a Shopify fulfillment, a WooCommerce note). The
-- attempt itself is in outbox_attempts as for every message.
CREATE TABLE outbox_steps (
    outbox_id  bigint NOT NULL REFERENCES outbox (id),
    attempt    integer NOT NULL,
    step       integer NOT NULL,
    action     text NOT NULL,        -- fulfillment_orders, fulfillment_create, notes, note_create, order, order_complete
    method     text NOT NULL,
    path       text NOT NULL,        -- the URL's path and query, without the host
    started_at timestamptz NOT NULL,
    status     integer,              -- HTTP status; NULL when there was no response
    error      text,
    latency_ms integer NOT NULL,
    ref        text,                 -- the platform's id found or created
    PRIMARY KEY (outbox_id, attempt, step)
);

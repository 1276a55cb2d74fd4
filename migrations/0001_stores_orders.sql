-- Stores, orders and order lines: what storefronts send us.
-- Every order table keys on store_id first, so the data can later be
-- distributed by store without rewriting keys.

CREATE TABLE stores (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code                text NOT NULL UNIQUE
                        CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    format              text NOT NULL DEFAULT 'native'
                        CHECK (format IN ('native', 'shopify', 'woocommerce')),
    -- Several secrets are valid at once during a key rotation.
    secrets             text[] NOT NULL CHECK (cardinality(secrets) BETWEEN 1 AND 8),
    policy              text NOT NULL DEFAULT 'cheapest'
                        CHECK (policy IN ('cheapest', 'fastest', 'priority')),
    split_tolerance_pct integer NOT NULL DEFAULT 10
                        CHECK (split_tolerance_pct BETWEEN 0 AND 1000),
    callback_url        text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    store_id         bigint NOT NULL REFERENCES stores (id),
    id               bigint GENERATED ALWAYS AS IDENTITY,
    external_id      text NOT NULL CHECK (octet_length(external_id) BETWEEN 1 AND 128),
    status           text NOT NULL DEFAULT 'received'
                     CHECK (status IN ('received', 'routed', 'partially_routed',
                                       'needs_attention', 'partially_shipped',
                                       'shipped', 'delivered', 'cancelled')),
    currency         char(3),
    placed_at        timestamptz,
    customer_email   text,
    customer_name    text,
    ship_name        text,
    ship_line1       text,
    ship_line2       text,
    ship_city        text,
    ship_region      text,
    ship_postal_code text,
    ship_country     char(2),
    ship_phone       text,
    raw              jsonb NOT NULL,           -- the payload as received, for audit
    webhook_id       text,                     -- delivery id of the first delivery
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, id),
    UNIQUE (store_id, external_id)             -- redeliveries collapse onto one order
);
-- Operators and the admin API look orders up by id alone.
CREATE INDEX orders_id_idx ON orders (id);
CREATE INDEX orders_created_at_idx ON orders (created_at);

CREATE TABLE order_lines (
    store_id    bigint NOT NULL,
    order_id    bigint NOT NULL,
    line_no     integer NOT NULL CHECK (line_no BETWEEN 1 AND 500),
    sku         text NOT NULL CHECK (octet_length(sku) BETWEEN 1 AND 128),
    quantity    integer NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    unit_price  numeric(20, 4),
    title       text,
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'routed', 'unroutable', 'shipped',
                                  'delivered', 'cancelled')),
    reason      text,                          -- why unroutable
    PRIMARY KEY (store_id, order_id, line_no),
    FOREIGN KEY (store_id, order_id) REFERENCES orders (store_id, id)
);

-- Suppliers, their offers (the catalog), and what routing decided per line.

CREATE TABLE suppliers (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code          text NOT NULL UNIQUE
                  CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    endpoint      text NOT NULL CHECK (endpoint ~ '^https://'),
    -- Several secrets are valid at once during a key rotation; the first signs.
    secrets       text[] NOT NULL CHECK (cardinality(secrets) BETWEEN 1 AND 8),
    priority      integer NOT NULL DEFAULT 100 CHECK (priority BETWEEN 0 AND 1000000),
    active        boolean NOT NULL DEFAULT true,
    accept_within interval NOT NULL DEFAULT '24 hours',
    ship_within   interval NOT NULL DEFAULT '72 hours',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE offers (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    supplier_id    bigint NOT NULL REFERENCES suppliers (id),
    sku            text NOT NULL CHECK (octet_length(sku) BETWEEN 1 AND 128),
    supplier_sku   text NOT NULL CHECK (octet_length(supplier_sku) BETWEEN 1 AND 128),
    cost           numeric(20, 4) NOT NULL CHECK (cost >= 0),
    shipping_cost  numeric(20, 4) NOT NULL DEFAULT 0 CHECK (shipping_cost >= 0),
    -- Reservations decrement stock with a conditional update; the check is
    -- the last line of defence against overselling.
    stock          integer NOT NULL CHECK (stock >= 0),
    lead_time_days integer NOT NULL CHECK (lead_time_days BETWEEN 0 AND 365),
    ships_to       char(2)[],                 -- NULL = ships everywhere
    available      boolean NOT NULL DEFAULT true,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (supplier_id, sku)
);
-- Intake fetches the candidates of all an order's SKUs in one query.
CREATE INDEX offers_sku_idx ON offers (sku);

ALTER TABLE order_lines
    ADD COLUMN supplier_id bigint REFERENCES suppliers (id),
    ADD COLUMN offer_id    bigint REFERENCES offers (id),
    ADD COLUMN reserved    integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    ADD COLUMN unit_cost   numeric(20, 4);  -- landed cost per unit when routed
CREATE INDEX order_lines_offer_idx ON order_lines (offer_id) WHERE offer_id IS NOT NULL;

-- One row per routing of a line (a re-route after a rejection adds one).
CREATE TABLE routing_decisions (
    store_id     bigint NOT NULL,
    order_id     bigint NOT NULL,
    line_no      integer NOT NULL,
    attempt      integer NOT NULL DEFAULT 1,
    policy       text NOT NULL CHECK (policy IN ('cheapest', 'fastest', 'priority')),
    supplier_id  bigint REFERENCES suppliers (id),
    offer_id     bigint REFERENCES offers (id),
    reason       text CHECK (reason IN ('no_offer', 'no_region', 'out_of_stock', 'no_sku')),
    -- Every offer considered: {offer_id, supplier, cost, lead_time_days,
    -- priority, eligible, why_not}; the winner is also in supplier_id/offer_id.
    candidates   jsonb NOT NULL,
    search       text NOT NULL CHECK (search IN ('per_line', 'exact', 'greedy')),
    consolidated boolean NOT NULL DEFAULT false,
    decided_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, order_id, line_no, attempt),
    FOREIGN KEY (store_id, order_id, line_no) REFERENCES order_lines (store_id, order_id, line_no),
    CHECK ((offer_id IS NULL) = (reason IS NOT NULL))
);

-- No stranded orders: lines waiting for stock are routed when it comes,
-- stock levels arrive as feeds applied with the reservations made since,
-- and stores can be disabled.

-- How long a line unroutable for out_of_stock or no_offer keeps waiting for
-- stock before it stays unroutable with reason 'expired'.
ALTER TABLE stores
    ADD COLUMN hold_for interval NOT NULL DEFAULT '72 hours'
        CHECK (hold_for >= interval '0' AND hold_for <= interval '365 days'),
    -- A disabled store's webhooks are refused; what it has is kept.
    ADD COLUMN active boolean NOT NULL DEFAULT true;

-- The time as of which the offer's stock level was last set by an import
-- or a feed: a feed older than that is stale and changes nothing.
ALTER TABLE offers ADD COLUMN level_as_of timestamptz;

-- Every change of an offer's stock that is not a level: a reservation
-- (negative) or stock given back (positive), when it happened. A level
-- "as of T" is applied as the level plus the moves after T, so an order
-- reserved between a supplier's export and its arrival is not counted
-- twice. Moves older than a week are pruned; feeds older than that are
-- refused.
CREATE TABLE offer_moves (
    offer_id bigint NOT NULL,
    at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    delta    integer NOT NULL
);
CREATE INDEX offer_moves_offer_at_idx ON offer_moves (offer_id, at);

-- SKUs whose offers gained stock or became available: the lines waiting
-- for them are planned again (oldest order first) by dropshipd.
CREATE TABLE sku_changes (
    sku        text PRIMARY KEY,
    changed_at timestamptz NOT NULL DEFAULT now()
);

-- Orders an operator asked to plan again now (dropshipctl order reroute).
CREATE TABLE replan_orders (
    store_id     bigint NOT NULL,
    order_id     bigint NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, order_id),
    FOREIGN KEY (store_id, order_id) REFERENCES orders (store_id, id)
);

-- Lines waiting for stock, by SKU and then oldest order first.
CREATE INDEX order_lines_waiting_idx ON order_lines (sku, store_id, order_id)
    WHERE status = 'unroutable' AND reason IN ('out_of_stock', 'no_offer');

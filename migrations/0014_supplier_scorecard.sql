-- Routing on measured supplier performance: a scorecard per supplier,
-- refreshed by dropshipd off the request path, read with the candidate
-- offers; a `balanced` policy that prices a supplier's risk; and a health
-- floor per store. Every change here is additive and reads no history.

-- balanced: cost + shipping + P(rejected or late) x penalty (docs/routing.md).
ALTER TABLE stores DROP CONSTRAINT stores_policy_check;
ALTER TABLE stores ADD CONSTRAINT stores_policy_check
    CHECK (policy IN ('cheapest', 'fastest', 'priority', 'balanced'));

ALTER TABLE stores
    -- What a unit rejected or shipped late costs the store (re-routing,
    -- customer contact, a refund), in the store's currency: balanced adds
    -- its expected value to each offer's landed unit cost.
    ADD COLUMN penalty numeric(20, 4) NOT NULL DEFAULT 5
        CHECK (penalty >= 0 AND penalty <= 1000000),
    -- Health floor, in percent of the scorecard's (smoothed) rates: a
    -- supplier below either is used only when nobody else can ship the
    -- line. 0 = no floor.
    ADD COLUMN min_acceptance_rate numeric(5, 2) NOT NULL DEFAULT 0
        CHECK (min_acceptance_rate BETWEEN 0 AND 100),
    ADD COLUMN min_on_time_rate numeric(5, 2) NOT NULL DEFAULT 0
        CHECK (min_on_time_rate BETWEEN 0 AND 100);

-- Decisions record the policy they were made under. The rows already
-- there passed the narrower check, so the new one need not read them
-- (NOT VALID: no scan of a table as large as the order history).
ALTER TABLE routing_decisions DROP CONSTRAINT routing_decisions_policy_check;
ALTER TABLE routing_decisions ADD CONSTRAINT routing_decisions_policy_check
    CHECK (policy IN ('cheapest', 'fastest', 'priority', 'balanced')) NOT VALID;

-- One row per supplier: its requests created in the scorecard's window
-- ([score] window_s), as dropshipd last counted them ([score] refresh_ms).
-- The counts are kept so the rates can be checked; the rates are smoothed
-- toward the configured prior. Routing reads this table by supplier id.
CREATE TABLE supplier_scores (
    supplier_id            bigint PRIMARY KEY REFERENCES suppliers (id),
    window_start           timestamptz NOT NULL,  -- requests created since then are counted
    refreshed_at           timestamptz NOT NULL DEFAULT now(),
    requests               integer NOT NULL,      -- created in the window
    answered               integer NOT NULL,      -- accepted, rejected before accepting, or never delivered
    accepted               integer NOT NULL,
    rejected               integer NOT NULL,      -- rejected (a missed deadline is reason timeout), at any step
    failed                 integer NOT NULL,      -- the request could not be delivered
    rejected_by_reason     jsonb NOT NULL DEFAULT '{}',  -- {"out_of_stock": 3, "timeout": 1}
    judged                 integer NOT NULL,      -- accepted, and shipped, rejected later or past ship_within
    on_time                integer NOT NULL,      -- of those, shipped within ship_within
    median_hours_to_accept numeric(10, 2),
    median_hours_to_ship   numeric(10, 2),
    prior_weight           integer NOT NULL,      -- the prior the rates were smoothed with
    acceptance_ppm         integer NOT NULL CHECK (acceptance_ppm BETWEEN 0 AND 1000000),
    on_time_ppm            integer NOT NULL CHECK (on_time_ppm BETWEEN 0 AND 1000000),
    CHECK (answered <= requests AND accepted <= answered AND on_time <= judged AND judged <= accepted)
);

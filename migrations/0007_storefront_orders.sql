-- Shopify and WooCommerce orders: what their webhooks carry beyond the
-- native format, and lines that cannot be routed because the store sent
-- no SKU or no address to ship to.

-- The platform's own order name ("#1001" on Shopify, the number on
-- WooCommerce) and the platform's event id, for support and audit.
ALTER TABLE orders
    ADD COLUMN name     text,
    ADD COLUMN event_id text;

-- A line without a SKU is kept (reason no_sku) rather than refused.
ALTER TABLE order_lines
    ALTER COLUMN sku DROP NOT NULL,
    ADD COLUMN variant_id        text,
    ADD COLUMN requires_shipping boolean NOT NULL DEFAULT true;

ALTER TABLE routing_decisions DROP CONSTRAINT routing_decisions_reason_check;
ALTER TABLE routing_decisions ADD CONSTRAINT routing_decisions_reason_check
    CHECK (reason IN ('no_offer', 'no_region', 'out_of_stock', 'no_sku', 'no_address'));

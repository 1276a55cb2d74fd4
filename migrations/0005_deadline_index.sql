-- The deadline sweep looks only at requests still waiting on a supplier.
CREATE INDEX fulfillment_requests_open_idx ON fulfillment_requests (created_at)
    WHERE status IN ('pending', 'sent', 'accepted');

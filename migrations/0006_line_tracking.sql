-- A supplier may ship a request's lines in several parcels: tracking is
-- kept per line as well as the request's latest.
ALTER TABLE order_lines
    ADD COLUMN carrier         text,
    ADD COLUMN tracking_number text,
    ADD COLUMN tracking_url    text;

-- Every statement on a hot path reads through an index on its full key, so
-- its cost does not grow with history (docs/bench.md, make scale).

-- Callbacks, deadlines and re-routing find a request's lines by request id;
-- without this index each of them read every order line ever stored.
CREATE INDEX order_lines_request_idx ON order_lines (request_id) WHERE request_id IS NOT NULL;

-- The dispatcher claims due messages in (next_attempt_at, id) order: the
-- index gives that order directly, so a claim reads only what it takes.
CREATE INDEX outbox_due_id_idx ON outbox (next_attempt_at, id) WHERE state = 'pending';
DROP INDEX outbox_due_idx;

-- The deadline sweep read every open request older than the shortest
-- deadline of any supplier: with a year of history, tens of thousands of
-- requests a slow supplier keeps open, once a second in every worker. Each
-- open request now carries when it is overdue (due_at), set by a trigger
-- whichever statement moves its status and again when its supplier's
-- deadlines change, and the sweep reads only the overdue ones, in order,
-- from an index that holds open requests only.

ALTER TABLE fulfillment_requests ADD COLUMN due_at timestamptz;

UPDATE fulfillment_requests r
   SET due_at = r.created_at + CASE WHEN r.status = 'accepted' THEN s.ship_within ELSE s.accept_within END
  FROM suppliers s
 WHERE s.id = r.supplier_id AND r.status IN ('sent', 'accepted');

-- sent: accept_within; accepted: ship_within; both counted from creation
-- (as the sweep always did); any other status: no deadline.
CREATE FUNCTION fulfillment_request_due() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.due_at := CASE NEW.status
        WHEN 'sent' THEN NEW.created_at + (SELECT accept_within FROM suppliers WHERE id = NEW.supplier_id)
        WHEN 'accepted' THEN NEW.created_at + (SELECT ship_within FROM suppliers WHERE id = NEW.supplier_id)
    END;
    RETURN NEW;
END $$;

CREATE TRIGGER fulfillment_requests_due
    BEFORE INSERT OR UPDATE OF status, supplier_id, created_at ON fulfillment_requests
    FOR EACH ROW EXECUTE FUNCTION fulfillment_request_due();

CREATE FUNCTION supplier_deadlines_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE fulfillment_requests
       SET due_at = created_at + CASE WHEN status = 'accepted' THEN NEW.ship_within ELSE NEW.accept_within END
     WHERE supplier_id = NEW.id AND status IN ('sent', 'accepted');
    RETURN NULL;
END $$;

CREATE TRIGGER suppliers_deadlines_changed
    AFTER UPDATE OF accept_within, ship_within ON suppliers
    FOR EACH ROW
    WHEN (OLD.accept_within IS DISTINCT FROM NEW.accept_within OR OLD.ship_within IS DISTINCT FROM NEW.ship_within)
    EXECUTE FUNCTION supplier_deadlines_changed();

CREATE INDEX fulfillment_requests_due_idx ON fulfillment_requests (due_at) WHERE due_at IS NOT NULL;
DROP INDEX fulfillment_requests_open_idx;

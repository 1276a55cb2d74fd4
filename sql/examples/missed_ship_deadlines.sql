-- Suppliers missing their ship deadline this week: requests whose deadline
-- (creation + the supplier's ship_within) falls in the current ISO week
-- (Monday 00:00 UTC to now), and how many were not shipped by then —
-- shipped late, or still not shipped. Rejected, cancelled and failed
-- requests are left out: they were never going to ship.
--
--   psql -d dropship -f sql/examples/missed_ship_deadlines.sql
SET TIME ZONE 'UTC';

SELECT r.supplier,
       count(*) AS due,
       count(*) FILTER (WHERE r.shipped_at IS NOT NULL AND r.shipped_at <= r.ship_deadline) AS on_time,
       count(*) FILTER (WHERE r.shipped_at > r.ship_deadline) AS shipped_late,
       count(*) FILTER (WHERE r.shipped_at IS NULL) AS not_shipped,
       round(100.0 * count(*) FILTER (WHERE r.shipped_at IS NULL OR r.shipped_at > r.ship_deadline)
             / count(*), 1) AS missed_pct,
       round((extract(epoch FROM max(coalesce(r.shipped_at, now()) - r.ship_deadline)) / 3600)::numeric, 1)
           AS worst_hours_late
  FROM reporting.requests r
 -- Deadlines are at most a year after creation: this bound lets the
 -- created_at index narrow the scan.
 WHERE r.created_at >= date_trunc('week', now()) - interval '366 days'
   AND r.ship_deadline >= date_trunc('week', now())
   AND r.ship_deadline < now()
   AND r.status NOT IN ('rejected', 'cancelled', 'failed')
 GROUP BY r.supplier
HAVING count(*) FILTER (WHERE r.shipped_at IS NULL OR r.shipped_at > r.ship_deadline) > 0
 ORDER BY missed_pct DESC, due DESC;

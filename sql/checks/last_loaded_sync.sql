-- When the last sync that loaded data (ok or partial) finished, and how long ago in hours.
SELECT max(finished_at) AS finished_at, date_diff('second', max(finished_at), now()) / 3600.0 AS age_hours
FROM sync_runs WHERE status IN (SELECT unnest($loaded::VARCHAR[]));

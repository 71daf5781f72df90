-- Each cloud the ledger knows, with when its last sync that loaded data (ok or partial) finished and how
-- long ago in hours (NULL: it never loaded). Clouds are synced apart, so each is fresh or stale on its
-- own. The stalest first.
WITH latest AS (
    SELECT cloud, max(finished_at) FILTER (WHERE list_contains($loaded::VARCHAR[], status)) AS loaded_at
    FROM sync_runs
    GROUP BY cloud
)
SELECT cloud, loaded_at AS finished_at, date_diff('second', loaded_at, now()) / 3600.0 AS age_hours
FROM latest
ORDER BY loaded_at NULLS FIRST, cloud;

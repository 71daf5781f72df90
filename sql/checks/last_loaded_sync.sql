-- Each cloud the ledger knows or $clouds names, with when its last sync that loaded data (ok or partial)
-- finished and how long ago in hours (NULL: it never loaded), and whether the freshness check judges it:
-- every cloud $clouds names (the clouds configured now), or every cloud of the ledger when $clouds is empty.
-- Clouds are synced apart, so each is fresh or stale on its own. The stalest first.
WITH latest AS (
    SELECT cloud, max(finished_at) FILTER (WHERE list_contains($loaded::VARCHAR[], status)) AS loaded_at
    FROM sync_runs
    GROUP BY cloud
),
named AS (
    SELECT cloud FROM latest
    UNION
    SELECT unnest($clouds::VARCHAR[]) AS cloud
)
SELECT cloud, loaded_at AS finished_at, date_diff('second', loaded_at, now()) / 3600.0 AS age_hours,
       len($clouds::VARCHAR[]) = 0 OR list_contains($clouds::VARCHAR[], cloud) AS judged
FROM named
LEFT JOIN latest USING (cloud)
ORDER BY loaded_at NULLS FIRST, cloud;

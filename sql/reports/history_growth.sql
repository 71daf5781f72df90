-- Growth of backup storage per backup server and per user over 7 and 30 days, for the storage_by_* views.
-- "Now" is the cloud's latest sync in storage_history, never the wall clock, so a report reads the same
-- whenever it is run; each cloud is measured against its own syncs, which run apart from the others'.
-- Horizons are counted in hours: a TIMESTAMPTZ minus days follows the session's time zone across DST
-- changes. The storage_by_* views select from this one, so this file must sort before theirs.
CREATE OR REPLACE VIEW history_growth AS
WITH current_totals AS (
    SELECT cloud, 'backup_server' AS dimension, backup_server_id AS key, sum(backup_size)::BIGINT AS storage_kb
    FROM backups WHERE deleted_at IS NULL GROUP BY cloud, backup_server_id
    UNION ALL
    SELECT cloud, 'user', owner_user_id, sum(backup_size)::BIGINT
    FROM backups WHERE deleted_at IS NULL GROUP BY cloud, owner_user_id
),
horizons AS (
    SELECT * FROM (VALUES (7), (30)) AS h(days)
),
latest AS (
    SELECT cloud, max(synced_at) AS now_at FROM storage_history GROUP BY cloud
),
-- The cloud's latest sync at or before each horizon: one snapshot per cloud, dimension and horizon.
snapshots AS (
    SELECT h.cloud, h.dimension, z.days, max(h.synced_at) AS snapshot_at
    FROM storage_history AS h
    JOIN latest AS l ON l.cloud = h.cloud
    CROSS JOIN horizons AS z
    WHERE h.synced_at <= l.now_at - to_hours(24 * z.days)
    GROUP BY h.cloud, h.dimension, z.days
),
-- A key missing from a snapshot held no current backups then: 0 kB, not unknown.
past AS (
    SELECT c.cloud, c.dimension, c.key, s.days, coalesce(h.storage_kb, 0) AS storage_kb
    FROM current_totals AS c
    JOIN snapshots AS s ON s.cloud = c.cloud AND s.dimension = c.dimension
    LEFT JOIN storage_history AS h
        ON h.cloud = s.cloud AND h.dimension = s.dimension AND h.synced_at = s.snapshot_at
       AND h.key IS NOT DISTINCT FROM c.key
)
SELECT c.cloud,
       c.dimension,
       c.key,
       c.storage_kb - p7.storage_kb   AS growth_7d_kb,
       c.storage_kb - p30.storage_kb  AS growth_30d_kb
FROM current_totals AS c
LEFT JOIN past AS p7
    ON p7.cloud = c.cloud AND p7.dimension = c.dimension AND p7.key IS NOT DISTINCT FROM c.key AND p7.days = 7
LEFT JOIN past AS p30
    ON p30.cloud = c.cloud AND p30.dimension = c.dimension AND p30.key IS NOT DISTINCT FROM c.key AND p30.days = 30
ORDER BY c.cloud, c.dimension, c.key NULLS LAST;

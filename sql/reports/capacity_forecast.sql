-- When each backup server with a known capacity reaches 80% and 100%, at the pace of the last 30 days.
-- Capacity is GB as OnApp reports it, read as GiB (1 GB = 1024² kB). The pace is the least-squares
-- slope of GiB over epoch days through the last sync of each UTC day in the 30 days before the
-- cloud's latest sync (not the wall clock, so a rerun reads the same). A server is one cloud's server,
-- measured against that cloud's own syncs: clouds are synced apart. A server missing from a sync held
-- nothing then (0 GiB). Fullness outranks the other statuses: a full server must say so even
-- with one day of history. GiB figures are shown to 3 decimals (1 MiB); percentages, days and
-- dates are worked out from the unrounded ones.
-- reclaimable_gib: the server's current backups marked for delete, the space OnApp's purge frees;
-- days_to_100_pct_after_purge: days_to_100_pct at the same pace from the storage left after that purge.
CREATE OR REPLACE VIEW capacity_forecast AS
WITH servers AS (
    SELECT s.cloud, s.id, s.label, s.capacity::DOUBLE AS capacity_gib,
           coalesce((SELECT sum(b.backup_size) FROM backups AS b
                     WHERE b.deleted_at IS NULL AND b.cloud = s.cloud AND b.backup_server_id = s.id), 0)
               / 1048576.0 AS storage_gib,
           coalesce((SELECT sum(b.backup_size) FROM backups AS b
                     WHERE b.deleted_at IS NULL AND b.cloud = s.cloud AND b.backup_server_id = s.id
                       AND b.marked_for_delete), 0)
               / 1048576.0 AS reclaimable_gib
    FROM backup_servers AS s
    WHERE s.capacity > 0
),
latest AS (
    SELECT cloud, max(synced_at) AS now_at FROM storage_history WHERE dimension = 'backup_server' GROUP BY cloud
),
daily AS (
    SELECT h.cloud, max(h.synced_at) AS synced_at
    FROM storage_history AS h
    JOIN latest AS l ON l.cloud = h.cloud
    WHERE h.dimension = 'backup_server' AND h.synced_at >= l.now_at - to_hours(24 * 30)
    GROUP BY h.cloud, (h.synced_at AT TIME ZONE 'UTC')::DATE
),
points AS (
    SELECT s.cloud, s.id, epoch(d.synced_at) / 86400.0 AS x, coalesce(h.storage_kb, 0) / 1048576.0 AS y,
           (d.synced_at AT TIME ZONE 'UTC')::DATE AS day
    FROM servers AS s
    JOIN daily AS d ON d.cloud = s.cloud
    LEFT JOIN storage_history AS h
        ON h.cloud = s.cloud AND h.dimension = 'backup_server' AND h.key = s.id AND h.synced_at = d.synced_at
),
fits AS (
    SELECT cloud, id, regr_slope(y, x) AS slope, count(DISTINCT day) AS history_days,
           max(x) - min(x) AS span_days
    FROM points
    GROUP BY cloud, id
),
forecast AS (
    SELECT s.*, f.history_days, f.span_days,
           CASE WHEN f.history_days >= 2 AND f.span_days >= 1 THEN f.slope END AS slope,
           l.now_at
    FROM servers AS s
    LEFT JOIN fits AS f ON f.cloud = s.cloud AND f.id = s.id
    LEFT JOIN latest AS l ON l.cloud = s.cloud
),
reach AS (
    SELECT *,
           CASE WHEN slope > 0 AND storage_gib < 0.8 * capacity_gib
                THEN (0.8 * capacity_gib - storage_gib) / slope END AS days_80,
           CASE WHEN slope > 0 AND storage_gib < capacity_gib
                THEN (capacity_gib - storage_gib) / slope END AS days_100,
           CASE WHEN slope > 0 AND storage_gib - reclaimable_gib < capacity_gib
                THEN (capacity_gib - (storage_gib - reclaimable_gib)) / slope END AS days_100_after_purge
    FROM forecast
)
SELECT
    cloud,
    id                                                    AS backup_server_id,
    label,
    capacity_gib,
    round(storage_gib, 3)                                 AS storage_gib,
    round(100.0 * storage_gib / capacity_gib, 2)          AS used_pct,
    -- + 0.0 turns the -0.0 that rounding a slight shrink gives into 0.0.
    round(slope, 3) + 0.0                                 AS growth_gib_per_day,
    coalesce(history_days, 0)                             AS history_days,
    round(days_80, 1)                                     AS days_to_80_pct,
    -- Dates past 9999 cannot be represented (and mean "never"): left NULL like the days beyond.
    CASE WHEN days_80 < 2900000
         THEN ((now_at + to_microseconds((days_80 * 86400e6)::BIGINT)) AT TIME ZONE 'UTC')::DATE END AS date_80_pct,
    round(days_100, 1)                                    AS days_to_100_pct,
    CASE WHEN days_100 < 2900000
         THEN ((now_at + to_microseconds((days_100 * 86400e6)::BIGINT)) AT TIME ZONE 'UTC')::DATE END AS date_100_pct,
    CASE
        WHEN storage_gib >= capacity_gib       THEN 'already full'
        WHEN storage_gib >= 0.8 * capacity_gib THEN 'over 80%'
        WHEN slope IS NULL                     THEN 'not enough history'
        WHEN slope <= 0                        THEN 'not growing'
        ELSE 'growing'
    END                                                   AS status,
    round(reclaimable_gib, 3)                             AS reclaimable_gib,
    round(days_100_after_purge, 1)                        AS days_to_100_pct_after_purge
FROM reach
ORDER BY cloud, backup_server_id;

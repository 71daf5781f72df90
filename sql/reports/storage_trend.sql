-- Backup storage over time per backup server and per user of each cloud: the cloud's last sync of each
-- UTC day (clouds are synced apart, each at its own hours). A key absent on a day held no current
-- backups at that day's last sync of its cloud.
CREATE OR REPLACE VIEW storage_trend AS
WITH daily AS (
    SELECT cloud, dimension, (synced_at AT TIME ZONE 'UTC')::DATE AS day, max(synced_at) AS synced_at
    FROM storage_history
    GROUP BY cloud, dimension, day
)
SELECT
    h.cloud,
    h.dimension,
    d.day,
    h.key,
    CASE h.dimension WHEN 'backup_server' THEN s.label WHEN 'user' THEN u.login END AS label,
    h.backups,
    h.storage_kb,
    round(h.storage_kb / 1048576.0, 3) AS storage_gib
FROM daily AS d
JOIN storage_history AS h ON h.cloud = d.cloud AND h.dimension = d.dimension AND h.synced_at = d.synced_at
LEFT JOIN backup_servers AS s ON h.dimension = 'backup_server' AND s.cloud = h.cloud AND s.id = h.key
LEFT JOIN users AS u ON h.dimension = 'user' AND u.cloud = h.cloud AND u.id = h.key
ORDER BY h.cloud, h.dimension, d.day, h.key NULLS LAST;

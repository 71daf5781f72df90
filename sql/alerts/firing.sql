-- The alerts the report views show right now, one row per (cloud, kind, key). A backup server fires when it
-- is at least $full_pct % used or forecast to reach 100% within $full_days days; every VM with a protection
-- gap and every backup far from its VM's usual size fires too. Keys are text, so that every kind's key
-- fits one column; numeric keys sort as numbers. Ids are unique only within a cloud: each alert carries
-- its cloud, and the messages read as they do with one cloud (the webhook's text names the cloud).
SELECT cloud, kind, id::VARCHAR AS key, message
FROM (
    SELECT cloud, 'backup_server_full' AS kind, backup_server_id AS id,
           format('backup server {} ({}) is {}% full', backup_server_id, coalesce(label, 'no label'), used_pct)
           || CASE WHEN days_to_100_pct IS NULL THEN ''
                   ELSE format('; 100% in {} days at the last 30 days'' pace', days_to_100_pct) END AS message
    FROM capacity_forecast
    WHERE used_pct >= $full_pct OR days_to_100_pct <= $full_days

    UNION ALL

    SELECT cloud, 'protection_gap', virtual_machine_id,
           format('VM {} ({}, owner {}): {}', virtual_machine_id, coalesce(label, 'no label'),
                  coalesce(user_login, user_id::VARCHAR, 'unknown'), reason)
           || CASE WHEN newest_backup_at IS NULL THEN ''
                   ELSE format('; newest backup {} days old', age_days) END
    FROM protection_gaps

    UNION ALL

    SELECT cloud, 'backup_anomaly', backup_id,
           format('backup {} of VM {} ({}): {} kB, {} times the median of its other backups ({} kB)',
                  backup_id, virtual_machine_id, backup_type, backup_size_kb, ratio, round(median_kb)::BIGINT)
    FROM backup_anomalies
) AS found (cloud, kind, id, message)
ORDER BY kind, cloud, id;

-- Backup storage held by each backup server of each cloud (NULL id: backups on no dedicated server).
-- Server ids are unique only within a cloud: another cloud's server 1 is another server.
-- Current backups only, each id once; marked_for_delete ones count (still on disk).
-- reclaimable_kb: the backups of view reclaimable_backups, for whatever reason, on this server.
-- Growth: current storage_kb minus that of the cloud's latest sync at least 7 / 30 days before its
-- latest one (view history_growth); NULL while the history does not reach back that far.
CREATE OR REPLACE VIEW storage_by_backup_server AS
SELECT
    b.cloud,
    b.backup_server_id,
    any_value(s.label)                                               AS backup_server_label,
    count(*)                                                         AS backups,
    sum(b.backup_size)::BIGINT                                       AS storage_kb,
    round(sum(b.backup_size) / 1048576.0, 3)                         AS storage_gib,
    count(*) FILTER (WHERE b.backup_type = 'normal')                 AS normal_backups,
    count(*) FILTER (WHERE b.backup_type = 'incremental')            AS incremental_backups,
    coalesce(sum(b.backup_size) FILTER (WHERE r.backup_id IS NOT NULL), 0)::BIGINT AS reclaimable_kb,
    count(DISTINCT b.owner_user_id)                                  AS users,
    count(DISTINCT b.virtual_machine_id)                             AS virtual_machines,
    any_value(s.capacity)::DOUBLE                                    AS capacity_gib,
    round(100.0 * sum(b.backup_size) / 1048576.0 / nullif(any_value(s.capacity), 0), 2) AS used_pct,
    any_value(g.growth_7d_kb)                                        AS growth_7d_kb,
    any_value(g.growth_30d_kb)                                       AS growth_30d_kb
FROM backups AS b
LEFT JOIN backup_servers AS s ON s.cloud = b.cloud AND s.id = b.backup_server_id
LEFT JOIN reclaimable_backups AS r ON r.cloud = b.cloud AND r.backup_id = b.id
LEFT JOIN history_growth AS g
    ON g.cloud = b.cloud AND g.dimension = 'backup_server' AND g.key IS NOT DISTINCT FROM b.backup_server_id
WHERE b.deleted_at IS NULL
GROUP BY b.cloud, b.backup_server_id
ORDER BY b.cloud, storage_kb DESC, b.backup_server_id NULLS LAST;

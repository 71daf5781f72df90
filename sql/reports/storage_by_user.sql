-- Backup storage consumed by each user of each cloud: the backup's user_id, else its VM's owner (API < 4.2).
-- User ids are unique only within a cloud: another cloud's user 1 is someone else.
-- reclaimable_kb: the backups of view reclaimable_backups, for whatever reason, of this user.
-- share_pct: the user's part of the cloud's storage.
-- Growth: current storage_kb minus that of the cloud's latest sync at least 7 / 30 days before its
-- latest one (view history_growth); NULL while the history does not reach back that far.
CREATE OR REPLACE VIEW storage_by_user AS
SELECT
    b.cloud,
    b.owner_user_id                                                  AS user_id,
    any_value(u.login)                                               AS user_login,
    count(*)                                                         AS backups,
    sum(b.backup_size)::BIGINT                                       AS storage_kb,
    round(sum(b.backup_size) / 1048576.0, 3)                         AS storage_gib,
    count(DISTINCT b.virtual_machine_id)                             AS virtual_machines,
    count(*) FILTER (WHERE b.backup_type = 'normal')                 AS normal_backups,
    count(*) FILTER (WHERE b.backup_type = 'incremental')            AS incremental_backups,
    coalesce(sum(b.backup_size) FILTER (WHERE r.backup_id IS NOT NULL), 0)::BIGINT AS reclaimable_kb,
    round(100.0 * sum(b.backup_size) / nullif(sum(sum(b.backup_size)) OVER (PARTITION BY b.cloud), 0), 2)
                                                                     AS share_pct,
    any_value(g.growth_7d_kb)                                        AS growth_7d_kb,
    any_value(g.growth_30d_kb)                                       AS growth_30d_kb
FROM backups AS b
LEFT JOIN users AS u ON u.cloud = b.cloud AND u.id = b.owner_user_id
LEFT JOIN reclaimable_backups AS r ON r.cloud = b.cloud AND r.backup_id = b.id
LEFT JOIN history_growth AS g
    ON g.cloud = b.cloud AND g.dimension = 'user' AND g.key IS NOT DISTINCT FROM b.owner_user_id
WHERE b.deleted_at IS NULL
GROUP BY b.cloud, b.owner_user_id
ORDER BY b.cloud, storage_kb DESC, user_id NULLS LAST;

-- Backup storage of each VM of each cloud that has current backups: by cloud, the top consumers first.
-- VM and user ids are unique only within a cloud: a VM's record and owner are those of its own cloud.
-- The owner is the VM's user_id; a VM missing from virtual_machines falls back to its backups' owner.
CREATE OR REPLACE VIEW storage_by_virtual_machine AS
SELECT
    b.cloud,
    b.virtual_machine_id,
    any_value(v.label)                                      AS label,
    any_value(v.hostname)                                   AS hostname,
    coalesce(any_value(v.user_id), any_value(b.owner_user_id)) AS user_id,
    any_value(u.login)                                      AS user_login,
    count(*)                                                AS backups,
    sum(b.backup_size)::BIGINT                              AS storage_kb,
    round(sum(b.backup_size) / 1048576.0, 3)                AS storage_gib,
    min(b.created_at)                                       AS oldest_backup_at,
    max(b.created_at)                                       AS newest_backup_at
FROM backups AS b
LEFT JOIN virtual_machines AS v ON v.cloud = b.cloud AND v.id = b.virtual_machine_id
LEFT JOIN users AS u ON u.cloud = b.cloud AND u.id = coalesce(v.user_id, b.owner_user_id)
WHERE b.deleted_at IS NULL
GROUP BY b.cloud, b.virtual_machine_id
ORDER BY b.cloud, storage_kb DESC, b.virtual_machine_id;

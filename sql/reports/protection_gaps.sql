-- Current VMs (listed by the latest loaded sync, so not deleted) that are not protected, each once with
-- every gap that applies, joined by '; ' in this order:
--   no backups        the VM has no current backup;
--   no recent backup  its newest built backup is older than protection_days (report_settings), or it has
--                     backups but none built;
--   backup not built  a current backup with built = false was created more than 24 hours before as of.
-- A backup's time is its built_at, else created_at, else first_seen_at (a NULL created_at is read as
-- the first sync that listed it). Ages run to the VM's cloud's as of (view as_of), never to the wall
-- clock: another cloud's later sync says nothing of this cloud's backups. A VM is one cloud's VM.
CREATE OR REPLACE VIEW protection_gaps AS
WITH current_backups AS (
    SELECT cloud, virtual_machine_id, built,
           coalesce(created_at, first_seen_at) AS created_at,
           coalesce(built_at, created_at, first_seen_at) AS backup_at
    FROM backups
    WHERE deleted_at IS NULL
),
per_vm AS (
    SELECT v.cloud, v.id, v.label, v.user_id, a.as_of, s.protection_days,
           count(b.virtual_machine_id) AS backups,
           max(b.backup_at) AS newest_backup_at,
           max(b.backup_at) FILTER (WHERE b.built) AS newest_built_at,
           -- 24 hours, not 1 day: the TIMESTAMPTZ interval would follow the session's DST.
           count(*) FILTER (WHERE b.built = false AND b.created_at < a.as_of - to_hours(24)) AS unbuilt
    FROM virtual_machines AS v
    JOIN as_of AS a ON a.cloud = v.cloud
    CROSS JOIN report_settings AS s
    LEFT JOIN current_backups AS b ON b.cloud = v.cloud AND b.virtual_machine_id = v.id
    WHERE v.deleted_at IS NULL
    GROUP BY v.cloud, v.id, v.label, v.user_id, a.as_of, s.protection_days
),
gaps AS (
    SELECT *,
           concat_ws('; ',
               CASE WHEN backups = 0 THEN 'no backups' END,
               CASE WHEN backups > 0 AND (newest_built_at IS NULL
                         OR newest_built_at < as_of - to_microseconds((protection_days * 86400e6)::BIGINT))
                    THEN 'no recent backup' END,
               CASE WHEN unbuilt > 0 THEN 'backup not built' END
           ) AS reason
    FROM per_vm
)
SELECT
    g.cloud,
    g.id                                                                   AS virtual_machine_id,
    g.label,
    g.user_id,
    u.login                                                                AS user_login,
    g.backups,
    g.newest_backup_at,
    -- + 0.0 turns the -0.0 that rounding a backup a moment after as of gives into 0.0.
    round((epoch_us(g.as_of) - epoch_us(g.newest_backup_at)) / 86400e6, 1) + 0.0 AS age_days,
    g.reason
FROM gaps AS g
LEFT JOIN users AS u ON u.cloud = g.cloud AND u.id = g.user_id
WHERE g.reason <> ''
ORDER BY g.cloud, virtual_machine_id;

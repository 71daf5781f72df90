-- Current backups whose space could be reclaimed, each once with every reason that applies.
-- "Not built for more than a day" compares created_at with last_seen_at (the last sync that
-- listed the backup, still unbuilt), not with the wall clock: the report then says only what
-- a sync saw, and reads the same whenever it is run. A backup's VM is the VM of its own cloud.
-- This view is what "reclaimable" means in every report: the storage_by_* views sum its backups
-- as reclaimable_kb, so this file must sort before theirs.
CREATE OR REPLACE VIEW reclaimable_backups AS
WITH reasons AS (
    SELECT
        b.cloud,
        b.id AS backup_id,
        b.virtual_machine_id,
        b.backup_server_id,
        b.owner_user_id,
        b.backup_size,
        b.created_at,
        concat_ws('; ',
            CASE WHEN b.marked_for_delete THEN 'marked for delete' END,
            CASE WHEN v.id IS NULL OR v.deleted_at IS NOT NULL THEN 'virtual machine no longer exists' END,
            -- 24 hours, not 1 day: the TIMESTAMPTZ interval would follow the session's DST.
            CASE WHEN NOT b.built AND b.created_at < b.last_seen_at - to_hours(24)
                 THEN 'not built for more than a day' END
        ) AS reason
    FROM backups AS b
    LEFT JOIN virtual_machines AS v ON v.cloud = b.cloud AND v.id = b.virtual_machine_id
    WHERE b.deleted_at IS NULL
)
SELECT * FROM reasons
WHERE reason <> ''
ORDER BY cloud, backup_size DESC NULLS LAST, backup_id;

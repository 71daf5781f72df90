-- A new version only where a versioned field differs from the open version: history grows with change.
-- An anti-join with NULLs equal is EXCEPT's meaning, but hashes the open versions, not the staged rows.
CREATE OR REPLACE TEMP TABLE version_changes AS
SELECT s.cloud, s.id AS backup_id, s.backup_size, s.backup_server_id, s.owner_user_id, s.virtual_machine_id,
       s.backup_type, s.marked_for_delete, s.built, s.locked
FROM staged AS s
ANTI JOIN (SELECT * FROM backup_versions WHERE cloud = $cloud AND valid_to IS NULL) AS v
    ON  v.backup_id = s.id
    AND v.backup_size        IS NOT DISTINCT FROM s.backup_size
    AND v.backup_server_id   IS NOT DISTINCT FROM s.backup_server_id
    AND v.owner_user_id      IS NOT DISTINCT FROM s.owner_user_id
    AND v.virtual_machine_id IS NOT DISTINCT FROM s.virtual_machine_id
    AND v.backup_type        IS NOT DISTINCT FROM s.backup_type
    AND v.marked_for_delete  IS NOT DISTINCT FROM s.marked_for_delete
    AND v.built              IS NOT DISTINCT FROM s.built
    AND v.locked             IS NOT DISTINCT FROM s.locked;

UPDATE backup_versions SET valid_to = $synced_at
WHERE cloud = $cloud AND valid_to IS NULL AND backup_id IN (SELECT backup_id FROM version_changes);

INSERT INTO backup_versions BY NAME
SELECT *, $synced_at AS valid_from, NULL::TIMESTAMPTZ AS valid_to, $run_id AS run_id
FROM version_changes;

-- A new version only where a versioned field differs from the open version: history grows with change.
CREATE OR REPLACE TEMP TABLE version_changes AS
SELECT id AS backup_id, backup_size, backup_server_id, owner_user_id, virtual_machine_id,
       backup_type, marked_for_delete, built, locked
FROM staged
EXCEPT
SELECT backup_id, backup_size, backup_server_id, owner_user_id, virtual_machine_id,
       backup_type, marked_for_delete, built, locked
FROM backup_versions WHERE valid_to IS NULL;

UPDATE backup_versions SET valid_to = $synced_at
WHERE valid_to IS NULL AND backup_id IN (SELECT backup_id FROM version_changes);

INSERT INTO backup_versions BY NAME
SELECT *, $synced_at AS valid_from, NULL::TIMESTAMPTZ AS valid_to, $run_id AS run_id
FROM version_changes;

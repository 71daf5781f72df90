-- What this sync would soft-delete in its cloud: what a readable VM no longer lists, and the backups of VMs
-- gone from the VM list or 404. A VM whose list failed keeps its rows untouched; so does a listed record that
-- was rejected. Counted before anything is written, against the cloud's backups current now.
CREATE OR REPLACE TEMP TABLE deleted_now AS
SELECT b.id
FROM backups AS b
WHERE b.cloud = $cloud
  AND b.deleted_at IS NULL
  AND b.id NOT IN (SELECT id FROM staged)
  AND b.id NOT IN (SELECT id FROM rejected_ids)
  AND (b.virtual_machine_id IN (SELECT id FROM listed_vms WHERE status IN ('ok', 'vanished'))
       OR b.virtual_machine_id NOT IN (SELECT id FROM listed_vms));

SELECT (SELECT count(*) FROM deleted_now) AS deleted,
       (SELECT count(*) FROM backups WHERE cloud = $cloud AND deleted_at IS NULL) AS current;

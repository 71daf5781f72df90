-- Current backups with a negative size.
SELECT cloud, id, virtual_machine_id, backup_size FROM backups
WHERE deleted_at IS NULL AND backup_size < 0 ORDER BY cloud, id;

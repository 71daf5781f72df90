-- Soft-delete what find_deleted_backups.sql found, and close those backups' open versions.
UPDATE backups SET deleted_at = $synced_at WHERE cloud = $cloud AND id IN (SELECT id FROM deleted_now);

UPDATE backup_versions SET valid_to = $synced_at
WHERE cloud = $cloud AND valid_to IS NULL AND backup_id IN (SELECT id FROM deleted_now);

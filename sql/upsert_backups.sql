-- Insert new backups, refresh listed ones; first_seen_at survives, deleted_at clears on reappearance.
INSERT OR REPLACE INTO backups BY NAME
SELECT s.*,
       coalesce(b.first_seen_at, $synced_at) AS first_seen_at,
       $synced_at                            AS last_seen_at,
       NULL::TIMESTAMPTZ                     AS deleted_at
FROM staged AS s
LEFT JOIN backups AS b USING (id);

-- Listed backups that did not change: only last_seen_at moves (a rerun rewrote every row before).
UPDATE backups SET last_seen_at = $synced_at
WHERE cloud = $cloud AND id IN (SELECT id FROM staged) AND id NOT IN (SELECT id FROM backup_changes);

-- New backups: a plain insert, which costs half of a replace.
INSERT INTO backups BY NAME
SELECT s.*, $synced_at AS first_seen_at, $synced_at AS last_seen_at, NULL::TIMESTAMPTZ AS deleted_at
FROM staged AS s SEMI JOIN (SELECT id FROM backup_changes WHERE is_new) AS c USING (id);

-- Changed or reappearing ones: first_seen_at survives, deleted_at clears.
INSERT OR REPLACE INTO backups BY NAME
SELECT s.*,
       b.first_seen_at,
       $synced_at         AS last_seen_at,
       NULL::TIMESTAMPTZ  AS deleted_at
FROM staged AS s
JOIN backup_changes AS c ON c.id = s.id AND NOT c.is_new
JOIN backups AS b ON b.cloud = s.cloud AND b.id = s.id;

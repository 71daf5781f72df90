-- Staged rows that are new, or differ from the cloud's current row (a reappearing backup counts as changed).
-- Rows are compared whole, as structs, after a join on id: cheaper than EXCEPT's hash of every column.
CREATE OR REPLACE TEMP TABLE backup_changes AS
SELECT d.id, b.id IS NULL AS is_new
FROM (
    SELECT s.id
    FROM staged AS s
    LEFT JOIN (
        SELECT * EXCLUDE (first_seen_at, last_seen_at, deleted_at)
        FROM backups WHERE cloud = $cloud AND deleted_at IS NULL
    ) AS c ON c.id = s.id
    WHERE c.id IS NULL OR s IS DISTINCT FROM c
) AS d
LEFT JOIN (SELECT id FROM backups WHERE cloud = $cloud) AS b ON b.id = d.id;

SELECT count(*) FILTER (WHERE is_new)      AS backups_new,
       count(*) FILTER (WHERE NOT is_new)  AS backups_changed
FROM backup_changes;

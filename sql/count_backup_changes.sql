-- Staged rows that are new, or differ from the current row (a reappearing backup counts as changed).
SELECT
    count(*) FILTER (WHERE b.id IS NULL)      AS backups_new,
    count(*) FILTER (WHERE b.id IS NOT NULL)  AS backups_changed
FROM (
    SELECT * FROM staged
    EXCEPT
    SELECT * EXCLUDE (first_seen_at, last_seen_at, deleted_at) FROM backups WHERE deleted_at IS NULL
) AS s
LEFT JOIN backups AS b USING (id);

-- Current rows sharing a backup id (the primary key forbids it; a warehouse without keys may not).
SELECT id, count(*) AS copies FROM backups WHERE deleted_at IS NULL
GROUP BY id HAVING count(*) > 1 ORDER BY id;

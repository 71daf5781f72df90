-- Current rows sharing a backup id within a cloud (the primary key (cloud, id) forbids it; a warehouse
-- without keys may not). Two clouds may each have a backup of the same id: that is no duplicate.
SELECT cloud, id, count(*) AS copies FROM backups WHERE deleted_at IS NULL
GROUP BY cloud, id HAVING count(*) > 1 ORDER BY cloud, id;

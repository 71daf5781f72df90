-- "As of" for the reports, one row per cloud: when that cloud's latest loaded (ok or partial) sync read
-- its VM list, never the wall clock, so a report reads the same whenever it is run. It is the instant
-- that sync stamped on the cloud's data (last_seen_at, deleted_at, storage_history), so a backup it
-- found gone ends exactly then. Each cloud has its own: clouds are synced apart, and one cloud's later
-- sync says nothing of another's backups. No row for a cloud before its first loaded sync.
-- The views that select from it sort after this file.
CREATE OR REPLACE VIEW as_of AS
SELECT cloud, max(started_at) AS as_of
FROM sync_runs
WHERE status IN ('ok', 'partial')
GROUP BY cloud
ORDER BY cloud;

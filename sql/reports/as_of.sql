-- "As of" for the reports: when the latest loaded (ok or partial) sync read its VM list, never the
-- wall clock, so a report reads the same whenever it is run. It is the instant that sync stamped on
-- its data (last_seen_at, deleted_at, storage_history), so a backup it found gone ends exactly then.
-- One row, none before the first loaded sync. The views that select from it sort after this file.
CREATE OR REPLACE VIEW as_of AS
SELECT max(started_at) AS as_of
FROM sync_runs
WHERE status IN ('ok', 'partial')
HAVING count(*) > 0;

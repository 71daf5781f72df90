-- A loaded sync of the same cloud whose VM list was read after this one's: this run's data is older than
-- the warehouse's.
SELECT run_id, started_at
FROM sync_runs
WHERE cloud = $cloud AND status IN ('ok', 'partial') AND started_at > $started_at
ORDER BY started_at DESC
LIMIT 1;

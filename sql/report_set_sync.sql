-- The sync a report set shows: of those that loaded data, the one whose VM list was read last.
SELECT run_id, status, started_at, finished_at
FROM sync_runs
WHERE status IN (SELECT unnest($loaded::VARCHAR[]))
ORDER BY started_at DESC
LIMIT 1;

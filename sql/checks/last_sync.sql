-- The latest run in the ledger, whatever its status: one row per cloud it synced.
WITH latest AS (
    SELECT run_id FROM sync_runs ORDER BY finished_at DESC, started_at DESC, run_id LIMIT 1
)
SELECT cloud, run_id, status, vms_listed, vms_failed, rejected, finished_at
FROM sync_runs
WHERE run_id = (SELECT run_id FROM latest)
ORDER BY cloud;

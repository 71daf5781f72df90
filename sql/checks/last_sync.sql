-- The latest sync in the ledger, whatever its status.
SELECT run_id, status, vms_listed, vms_failed, rejected, finished_at
FROM sync_runs ORDER BY finished_at DESC, started_at DESC LIMIT 1;

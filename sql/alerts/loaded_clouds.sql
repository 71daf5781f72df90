-- The clouds one run loaded (an ok or partial ledger row): their sync_failed alert resolves with it.
SELECT cloud FROM sync_runs WHERE run_id = $run_id AND status IN ('ok', 'partial') ORDER BY cloud;

-- The ledger row of one sync.
INSERT INTO sync_runs BY NAME SELECT * FROM sync_run_frame;

-- Moves each alert of the temporary table alert_changes (cloud, kind, key, state, message) into its new state.
INSERT INTO alerts BY NAME
SELECT cloud, kind, key, state, message, $now AS since, $run_id AS run_id
FROM alert_changes
ON CONFLICT (kind, cloud, key) DO UPDATE SET
    state = excluded.state, message = excluded.message, since = excluded.since, run_id = excluded.run_id;

-- Moves each alert of the temporary table alert_changes (kind, key, state, message) into its new state.
INSERT INTO alerts BY NAME
SELECT kind, key, state, message, $now AS since, $run_id AS run_id
FROM alert_changes
ON CONFLICT (kind, key) DO UPDATE SET
    state = excluded.state, message = excluded.message, since = excluded.since, run_id = excluded.run_id;

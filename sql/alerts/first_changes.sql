-- The first $rows of the temporary table alert_changes, in the order they were staged (sql/alerts/changes.sql).
SELECT cloud, kind, key, state, message
FROM alert_changes
LIMIT $rows;

-- The first $rows of the temporary table alerts_now, in the order they were staged (sql/alerts/firing.sql).
SELECT cloud, kind, key, message
FROM alerts_now
LIMIT $rows;

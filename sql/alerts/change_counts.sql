-- How many alerts of the temporary table alert_changes start firing and how many resolve.
SELECT count(*) FILTER (WHERE state = 'firing') AS started, count(*) FILTER (WHERE state = 'resolved') AS resolved
FROM alert_changes;

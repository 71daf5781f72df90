-- How many alerts of each kind the table holds in each state.
SELECT kind, state, count(*) AS alerts
FROM alerts
GROUP BY kind, state
ORDER BY kind, state;

-- The two latest loaded syncs' totals per backup server, side by side (NULL key: no dedicated server).
WITH runs AS (
    SELECT run_id, row_number() OVER (ORDER BY finished_at DESC, started_at DESC) AS n
    FROM sync_runs WHERE status IN (SELECT unnest($loaded::VARCHAR[]))
    QUALIFY n <= 2
),
totals AS (
    SELECT r.n, h.key, h.storage_kb
    FROM storage_history AS h JOIN runs AS r USING (run_id)
    WHERE h.dimension = 'backup_server'
),
current AS (SELECT key, storage_kb FROM totals WHERE n = 1),
previous AS (SELECT key, storage_kb FROM totals WHERE n = 2)
SELECT
    coalesce(c.key, p.key)               AS backup_server_id,
    any_value(s.label)                   AS label,
    coalesce(any_value(p.storage_kb), 0) AS previous_kb,
    coalesce(any_value(c.storage_kb), 0) AS current_kb,
    (SELECT count(*) FROM runs)          AS syncs
FROM current AS c
FULL OUTER JOIN previous AS p ON c.key IS NOT DISTINCT FROM p.key
LEFT JOIN backup_servers AS s ON s.id = coalesce(c.key, p.key)
GROUP BY coalesce(c.key, p.key)
ORDER BY backup_server_id NULLS LAST;

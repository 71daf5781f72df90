-- Each cloud's two latest loaded syncs' totals per backup server, side by side (NULL key: no dedicated
-- server). Clouds are synced apart: a server is compared with its own cloud's previous sync, and a
-- server id is one cloud's server. syncs: how many loaded syncs of the cloud were found (at most 2).
WITH runs AS (
    SELECT cloud, run_id,
           row_number() OVER (PARTITION BY cloud ORDER BY finished_at DESC, started_at DESC) AS n
    FROM sync_runs WHERE status IN (SELECT unnest($loaded::VARCHAR[]))
    QUALIFY n <= 2
),
totals AS (
    SELECT r.cloud, r.n, h.key, h.storage_kb
    FROM storage_history AS h JOIN runs AS r ON r.cloud = h.cloud AND r.run_id = h.run_id
    WHERE h.dimension = 'backup_server'
),
current AS (SELECT cloud, key, storage_kb FROM totals WHERE n = 1),
previous AS (SELECT cloud, key, storage_kb FROM totals WHERE n = 2),
syncs AS (SELECT cloud, count(*) AS syncs FROM runs GROUP BY cloud)
SELECT
    coalesce(c.cloud, p.cloud)           AS cloud,
    coalesce(c.key, p.key)               AS backup_server_id,
    any_value(s.label)                   AS label,
    coalesce(any_value(p.storage_kb), 0) AS previous_kb,
    coalesce(any_value(c.storage_kb), 0) AS current_kb,
    any_value(n.syncs)                   AS syncs
FROM current AS c
FULL OUTER JOIN previous AS p ON c.cloud = p.cloud AND c.key IS NOT DISTINCT FROM p.key
LEFT JOIN backup_servers AS s ON s.cloud = coalesce(c.cloud, p.cloud) AND s.id = coalesce(c.key, p.key)
JOIN syncs AS n ON n.cloud = coalesce(c.cloud, p.cloud)
GROUP BY coalesce(c.cloud, p.cloud), coalesce(c.key, p.key)
ORDER BY cloud, backup_server_id NULLS LAST;

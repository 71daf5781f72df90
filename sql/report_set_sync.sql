-- The sync a report set shows: of the runs that loaded data, the one whose VM list was read last, with
-- every cloud it loaded. Its status is the worst of its clouds' (partial before ok), its times span them all.
WITH latest AS (
    SELECT run_id
    FROM sync_runs
    WHERE status IN (SELECT unnest($loaded::VARCHAR[]))
    ORDER BY started_at DESC
    LIMIT 1
)
SELECT run_id,
       CASE WHEN bool_or(status = 'partial') THEN 'partial' ELSE 'ok' END AS status,
       min(started_at) AS started_at,
       max(finished_at) AS finished_at,
       list(cloud ORDER BY cloud) AS clouds
FROM sync_runs
WHERE run_id = (SELECT run_id FROM latest) AND status IN (SELECT unnest($loaded::VARCHAR[]))
GROUP BY run_id;

-- What the alerts found now (the temporary table alerts_now: cloud, kind, key, message) change in the table
-- alerts: those that start firing (new, or resolved before), and firing ones that were evaluated (the
-- registered frame alert_scope: kind, cloud; a NULL cloud is every cloud) and are no longer found. An alert
-- is its kind, cloud and key: the same key in another cloud is another alert. An alert still firing is no
-- change, whatever its message says now.
SELECT n.cloud, n.kind, n.key, 'firing' AS state, n.message
FROM alerts_now AS n
LEFT JOIN alerts AS a ON a.kind = n.kind AND a.cloud = n.cloud AND a.key = n.key
WHERE a.state IS DISTINCT FROM 'firing'

UNION ALL

SELECT a.cloud, a.kind, a.key, 'resolved' AS state, a.message
FROM alerts AS a
WHERE a.state = 'firing'
  AND EXISTS (SELECT 1 FROM alert_scope AS s
              WHERE s.kind = a.kind AND (s.cloud IS NULL OR s.cloud = a.cloud))
  AND NOT EXISTS (SELECT 1 FROM alerts_now AS n WHERE n.kind = a.kind AND n.cloud = a.cloud AND n.key = a.key)

ORDER BY state, kind, cloud, try_cast(key AS BIGINT), key;

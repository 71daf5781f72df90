-- What the alerts found now (the temporary table alerts_now: kind, key, message) change in the table
-- alerts: those that start firing (new, or resolved before), and firing ones of the kinds in $kinds
-- that are no longer found. An alert still firing is no change, whatever its message says now.
SELECT n.kind, n.key, 'firing' AS state, n.message
FROM alerts_now AS n
LEFT JOIN alerts AS a ON a.kind = n.kind AND a.key = n.key
WHERE a.state IS DISTINCT FROM 'firing'

UNION ALL

SELECT a.kind, a.key, 'resolved' AS state, a.message
FROM alerts AS a
WHERE a.state = 'firing'
  AND list_contains($kinds, a.kind)
  AND NOT EXISTS (SELECT 1 FROM alerts_now AS n WHERE n.kind = a.kind AND n.key = a.key)

ORDER BY state, kind, try_cast(key AS BIGINT), key;

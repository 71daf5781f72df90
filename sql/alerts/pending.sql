-- The alerts the webhook has not been told of yet: firing ones it has not accepted as firing, and
-- resolved ones it last accepted as firing. An alert that resolved before the webhook ever heard of it
-- is never sent.
SELECT cloud, kind, key, state, message
FROM alerts
WHERE (state = 'firing' AND notified_state IS DISTINCT FROM 'firing')
   OR (state = 'resolved' AND notified_state = 'firing')
ORDER BY state, kind, cloud, try_cast(key AS BIGINT), key;

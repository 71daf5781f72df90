-- Alerts given by the run itself (the registered frame alerts_given: cloud, kind, key, message), in its order.
SELECT cloud, kind, key, message
FROM alerts_given;

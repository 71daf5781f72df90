-- Alerts given by the run itself (the registered frame alerts_given: kind, key, message), in its order.
SELECT kind, key, message
FROM alerts_given;

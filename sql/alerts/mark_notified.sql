-- The webhook accepted the alerts of the registered frame alerts_sent (cloud, kind, key, state) in those states.
UPDATE alerts
SET notified_state = s.state, notified_at = $now
FROM alerts_sent AS s
WHERE alerts.kind = s.kind AND alerts.cloud = s.cloud AND alerts.key = s.key AND alerts.state = s.state;

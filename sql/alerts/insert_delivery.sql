-- One POST to the webhook and its outcome (never the URL).
INSERT INTO alert_deliveries (run_id, attempted_at, firing, resolved, status, http_status, tries, reason)
VALUES ($run_id, $attempted_at, $firing, $resolved, $status, $http_status, $tries, $reason);

-- This sync's totals per backup server and per user of its cloud: the input of trends and forecasts.
INSERT INTO storage_history
SELECT $cloud, $run_id, $synced_at, 'backup_server', backup_server_id, count(*), coalesce(sum(backup_size), 0)
FROM backups WHERE cloud = $cloud AND deleted_at IS NULL GROUP BY backup_server_id
UNION ALL
SELECT $cloud, $run_id, $synced_at, 'user', owner_user_id, count(*), coalesce(sum(backup_size), 0)
FROM backups WHERE cloud = $cloud AND deleted_at IS NULL GROUP BY owner_user_id;

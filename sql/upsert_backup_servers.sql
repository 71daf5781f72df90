-- Labels and capacities for the reports, from the cloud's admin-only /settings/backup_servers list.
INSERT OR REPLACE INTO backup_servers BY NAME
SELECT $cloud AS cloud, id, label, ip_address, capacity, enabled, backup_server_group_id, $synced_at AS synced_at
FROM read_parquet($backup_servers_file);

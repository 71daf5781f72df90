-- The backups the backup_anomalies report lists, with their clouds and VMs: by cloud, the largest ratio first.
SELECT cloud, backup_id, virtual_machine_id, backup_type, backup_size_kb, median_kb, ratio
FROM backup_anomalies
ORDER BY cloud, ratio DESC, backup_id;

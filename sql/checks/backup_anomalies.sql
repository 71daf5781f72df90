-- The backups the backup_anomalies report lists, with their VMs, the largest ratio first.
SELECT backup_id, virtual_machine_id, backup_type, backup_size_kb, median_kb, ratio
FROM backup_anomalies
ORDER BY ratio DESC, backup_id;

-- Rows per warehouse table, for each table asset's row count.
SELECT 'backups' AS table_name, count(*) AS row_count FROM backups
UNION ALL SELECT 'backup_versions', count(*) FROM backup_versions
UNION ALL SELECT 'storage_history', count(*) FROM storage_history
UNION ALL SELECT 'virtual_machines', count(*) FROM virtual_machines
UNION ALL SELECT 'users', count(*) FROM users
UNION ALL SELECT 'backup_servers', count(*) FROM backup_servers
UNION ALL SELECT 'sync_runs', count(*) FROM sync_runs
UNION ALL SELECT 'sync_vm_errors', count(*) FROM sync_vm_errors
UNION ALL SELECT 'backup_rejects', count(*) FROM backup_rejects;

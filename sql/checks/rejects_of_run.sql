-- The records one sync set aside, and why.
SELECT virtual_machine_id, backup_id, reason FROM backup_rejects WHERE run_id = $run_id
ORDER BY virtual_machine_id, backup_id;

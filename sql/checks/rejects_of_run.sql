-- The records one run set aside, in every cloud it synced, and why.
SELECT cloud, virtual_machine_id, backup_id, reason FROM backup_rejects WHERE run_id = $run_id
ORDER BY cloud, virtual_machine_id, backup_id;

-- The VMs one run could not read, in every cloud it synced, and why.
SELECT cloud, virtual_machine_id, http_status, error_kind, message FROM sync_vm_errors
WHERE run_id = $run_id ORDER BY cloud, virtual_machine_id;

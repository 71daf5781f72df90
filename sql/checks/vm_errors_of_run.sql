-- The VMs one sync could not read, and why.
SELECT virtual_machine_id, http_status, error_kind, message FROM sync_vm_errors
WHERE run_id = $run_id ORDER BY virtual_machine_id;

-- The VMs this sync of a cloud could not read, and why.
INSERT INTO sync_vm_errors BY NAME
SELECT $cloud AS cloud, $run_id AS run_id, virtual_machine_id, http_status,
       coalesce(error_kind, 'error') AS error_kind, message
FROM read_parquet($vm_status_file)
WHERE status = 'failed';

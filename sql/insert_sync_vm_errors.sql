-- The VMs this sync could not read, and why.
INSERT INTO sync_vm_errors BY NAME SELECT $run_id AS run_id, * FROM vm_errors_frame;

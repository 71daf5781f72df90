-- The VM list as this run read it, each VM with the outcome of its backup list (none: it failed).
CREATE OR REPLACE TEMP TABLE listed_vms AS
SELECT v.id, v.identifier, v.label, v.hostname, v.user_id, coalesce(s.status, 'failed') AS status
FROM read_parquet($vms_file) AS v
LEFT JOIN read_parquet($vm_status_file) AS s ON s.virtual_machine_id = v.id;

-- Records set aside keep their earlier rows: their ids must not read as deleted.
CREATE OR REPLACE TEMP TABLE rejected_ids (id BIGINT);

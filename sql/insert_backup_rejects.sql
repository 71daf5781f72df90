-- Records set aside by this sync of a cloud, with the reason and the raw record (secrets already stripped).
INSERT INTO backup_rejects BY NAME SELECT $cloud AS cloud, $run_id AS run_id, * FROM staged_rejects;

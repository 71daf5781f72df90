-- The normalized frame (registered as staged_frame), cast to the table's types, one row per id.
-- An id listed under two VMs keeps the listing of the lowest VM id, so reruns agree.
CREATE OR REPLACE TEMP TABLE staged AS
SELECT * EXCLUDE (first_seen_at, last_seen_at, deleted_at) FROM backups LIMIT 0;

INSERT INTO staged BY NAME
SELECT * FROM staged_frame
QUALIFY row_number() OVER (PARTITION BY id ORDER BY virtual_machine_id) = 1;

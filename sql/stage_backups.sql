-- This run's staged parts, cast to the table's types, one row per id.
-- An id listed under two VMs keeps the listing of the lowest VM id, so reruns agree. The window
-- runs over those ids only: over a whole million rows it was most of this step.
CREATE OR REPLACE TEMP TABLE staged AS
SELECT * EXCLUDE (first_seen_at, last_seen_at, deleted_at) FROM backups LIMIT 0;

CREATE OR REPLACE TEMP TABLE listed_twice AS
SELECT id FROM read_parquet($backup_files) GROUP BY id HAVING count(*) > 1;

INSERT INTO staged BY NAME
SELECT * FROM read_parquet($backup_files) ANTI JOIN listed_twice USING (id);

INSERT INTO staged BY NAME
SELECT * FROM read_parquet($backup_files) SEMI JOIN listed_twice USING (id)
QUALIFY row_number() OVER (PARTITION BY id ORDER BY virtual_machine_id) = 1;

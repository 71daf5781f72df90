-- This run's staged parts of one cloud as the view `staged`, one row per id, read from the Parquet where it
-- lies: a copy in a temporary table held the whole fleet's rows in memory for the load's length.
-- An id listed under two VMs keeps the listing of the lowest VM id, so reruns agree. The window
-- runs over those ids only: over a whole million rows it was most of this step.
-- The parts do not carry their cloud: the view puts it first, where the table has it.
SET VARIABLE backup_files = $backup_files;
SET VARIABLE staged_cloud = $cloud;

CREATE OR REPLACE TEMP TABLE listed_twice AS
SELECT id FROM read_parquet(getvariable('backup_files')) GROUP BY id HAVING count(*) > 1;

-- The parts hold the table's columns but its `extra` as text: cast, so rows compare as the table's.
CREATE OR REPLACE TEMP VIEW staged AS
SELECT getvariable('staged_cloud')::VARCHAR AS cloud, * REPLACE (extra::JSON AS extra)
FROM read_parquet(getvariable('backup_files')) ANTI JOIN listed_twice USING (id)
UNION ALL BY NAME
SELECT getvariable('staged_cloud')::VARCHAR AS cloud, * REPLACE (extra::JSON AS extra)
FROM read_parquet(getvariable('backup_files')) SEMI JOIN listed_twice USING (id)
QUALIFY row_number() OVER (PARTITION BY id ORDER BY virtual_machine_id) = 1;

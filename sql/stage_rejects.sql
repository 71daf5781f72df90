-- The records this run set aside, and the ids among them that parse as backup ids.
CREATE OR REPLACE TEMP TABLE staged_rejects AS
SELECT * FROM read_parquet($reject_files);

INSERT INTO rejected_ids
SELECT DISTINCT TRY_CAST(backup_id AS BIGINT) AS id FROM staged_rejects WHERE TRY_CAST(backup_id AS BIGINT) IS NOT NULL;

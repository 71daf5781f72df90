-- A year of daily syncs before the one just loaded, for the report benchmark: the fleet grew by a
-- quarter over the year, some backups came and went, others were resized. (No parameter names in
-- comments: they would be bound as parameters.)

-- One ledger row and one set of history rows per earlier day.
INSERT INTO sync_runs BY NAME
SELECT s.* REPLACE (
    'bench-day-' || t.d AS run_id,
    s.started_at - to_hours(24 * t.d) AS started_at,
    s.finished_at - to_hours(24 * t.d) AS finished_at)
FROM sync_runs AS s CROSS JOIN range(1, $days + 1) AS t(d)
WHERE s.run_id = $run_id;

INSERT INTO storage_history BY NAME
SELECT h.cloud,
       'bench-day-' || t.d AS run_id,
       h.synced_at - to_hours(24 * t.d) AS synced_at,
       h.dimension,
       h.key,
       round(h.backups * (1 - 0.25 * t.d / 365))::BIGINT AS backups,
       round(h.storage_kb * (1 - 0.25 * t.d / 365))::BIGINT AS storage_kb
FROM storage_history AS h CROSS JOIN range(1, $days + 1) AS t(d)
WHERE h.run_id = $run_id;

-- Backups deleted during the year: copies of current ones under new ids, spread over the days.
CREATE OR REPLACE TEMP TABLE bench_gone AS
SELECT b.* REPLACE (
           $id_base + row_number() OVER (ORDER BY b.id) AS id,
           $now - to_hours(24 * (1 + b.id % $days) + 24 * 30) AS first_seen_at,
           $now - to_hours(24 * (1 + b.id % $days)) AS last_seen_at,
           $now - to_hours(24 * (1 + b.id % $days)) AS deleted_at)
FROM (SELECT * FROM backups WHERE deleted_at IS NULL ORDER BY id LIMIT $deleted) AS b;

INSERT INTO backups BY NAME SELECT * FROM bench_gone;

INSERT INTO backup_versions BY NAME
SELECT cloud, id AS backup_id, first_seen_at AS valid_from, deleted_at AS valid_to, 'bench-day-1' AS run_id,
       backup_size, backup_server_id, owner_user_id, virtual_machine_id, backup_type, marked_for_delete, built,
       locked
FROM bench_gone;

-- Earlier sizes of resized backups: one closed version each, ending where the current one starts.
INSERT INTO backup_versions BY NAME
SELECT v.* REPLACE (
    v.backup_size - 1024 AS backup_size,
    $now - to_hours(24 * (1 + v.backup_id % $days)) AS valid_from,
    $now AS valid_to)
FROM (SELECT * FROM backup_versions WHERE valid_to IS NULL ORDER BY backup_id DESC LIMIT $resized) AS v;

DROP TABLE bench_gone;

-- Current backups whose size is far from the same VM's usual: each is compared with the median
-- backup_size of the other backups of its VM and backup_type that the warehouse has ever seen
-- (deleted ones included; a NULL backup_type is a type of its own). With at least 3 others, a size
-- more than anomaly_factor (report_settings) times the median, or less than the median divided by it,
-- is listed; ratio = size / median, to 2 decimals. Backups without a size are neither compared nor
-- counted among the others; a size of 0 is compared like any (ratio 0.00: an empty backup is as
-- suspect as a huge one), and a median of 0 gives nothing to compare with. A VM is one cloud's VM:
-- another cloud's VM of the same id is another VM. By cloud, then the largest ratio first.
CREATE OR REPLACE VIEW backup_anomalies AS
WITH groups AS (
    -- The sizes of each VM and type in order: the median of a backup's others is read off this list by
    -- position, so no backup is paired with every other one of its VM (a million backups fit in memory).
    SELECT cloud, virtual_machine_id, backup_type,
           list(backup_size ORDER BY backup_size, id) AS sizes,
           list(id ORDER BY backup_size, id) AS ids
    FROM backups
    WHERE backup_size IS NOT NULL
    GROUP BY cloud, virtual_machine_id, backup_type
),
ranked AS (
    SELECT b.cloud, b.id, b.virtual_machine_id, b.owner_user_id, b.backup_type, b.backup_size, b.created_at,
           g.sizes, list_position(g.ids, b.id) AS rank, len(g.sizes) - 1 AS others
    FROM backups AS b
    JOIN groups AS g
        ON g.cloud = b.cloud AND g.virtual_machine_id = b.virtual_machine_id
       AND g.backup_type IS NOT DISTINCT FROM b.backup_type
    WHERE b.deleted_at IS NULL AND b.backup_size IS NOT NULL
),
middles AS (
    -- Among the others, the middle one (odd count) or two (even) sit at these positions; in the whole
    -- list, one place further from the backup's own rank on.
    SELECT *, (others + 1) // 2 AS low, others // 2 + 1 AS high
    FROM ranked
    WHERE others >= 3
),
compared AS (
    SELECT cloud, id, virtual_machine_id, owner_user_id AS user_id, backup_type, backup_size, created_at,
           (sizes[low + CASE WHEN low >= rank THEN 1 ELSE 0 END]
            + sizes[high + CASE WHEN high >= rank THEN 1 ELSE 0 END]) / 2.0 AS median_kb
    FROM middles
)
SELECT
    c.cloud,
    c.id                                     AS backup_id,
    c.virtual_machine_id,
    c.user_id,
    c.backup_type,
    c.backup_size                            AS backup_size_kb,
    c.median_kb,
    round(c.backup_size / c.median_kb, 2)    AS ratio,
    c.created_at
FROM compared AS c
CROSS JOIN report_settings AS s
WHERE c.median_kb > 0
  AND (c.backup_size > s.anomaly_factor * c.median_kb OR c.backup_size < c.median_kb / s.anomaly_factor)
ORDER BY c.cloud, ratio DESC, backup_id;

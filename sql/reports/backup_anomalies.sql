-- Current backups whose size is far from the same VM's usual: each is compared with the median
-- backup_size of the other backups of its VM and backup_type that the warehouse has ever seen
-- (deleted ones included; a NULL backup_type is a type of its own). With at least 3 others, a size
-- more than anomaly_factor (report_settings) times the median, or less than the median divided by it,
-- is listed; ratio = size / median, to 2 decimals. Backups without a size are neither compared nor
-- counted among the others; a size of 0 is compared like any (ratio 0.00: an empty backup is as
-- suspect as a huge one), and a median of 0 gives nothing to compare with. The largest ratio first.
CREATE OR REPLACE VIEW backup_anomalies AS
WITH compared AS (
    SELECT b.id, any_value(b.virtual_machine_id) AS virtual_machine_id, any_value(b.owner_user_id) AS user_id,
           any_value(b.backup_type) AS backup_type, any_value(b.backup_size) AS backup_size,
           any_value(b.created_at) AS created_at,
           count(o.backup_size) AS others, median(o.backup_size) AS median_kb
    FROM backups AS b
    JOIN backups AS o
        ON o.virtual_machine_id = b.virtual_machine_id
       AND o.backup_type IS NOT DISTINCT FROM b.backup_type
       AND o.id <> b.id
    WHERE b.deleted_at IS NULL AND b.backup_size IS NOT NULL
    GROUP BY b.id
)
SELECT
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
WHERE c.others >= 3 AND c.median_kb > 0
  AND (c.backup_size > s.anomaly_factor * c.median_kb OR c.backup_size < c.median_kb / s.anomaly_factor)
ORDER BY ratio DESC, backup_id;

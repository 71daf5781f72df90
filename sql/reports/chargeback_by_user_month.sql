-- Backup storage per owner and calendar month (UTC), in GiB-hours and GiB-months, and what it bills.
-- A backup's life is [created_at, coalesce(deleted_at, as_of)); it adds size / 1024² GiB for each hour
-- of that life within the month. Bad input has a rule, never a silent drop from the bill:
--   * created_at NULL, or after the end of the life: the life starts at first_seen_at (the first sync
--     that listed it); were that after the end too, the life is empty: counted, 0 GiB-hours, in the
--     month of its end;
--   * a size of 0, NULL or below 0: counted in backups, 0 GiB-hours;
--   * owner_user_id NULL or not in users: its own row (empty user_id, or an empty user_login).
-- Exact arithmetic: kB x microseconds summed as HUGEINT, then rounded half up to 6 decimals (about
-- 1 kB, the unit OnApp reports sizes in) by integer division; the free allowance, price and amount
-- are DECIMALs from report_settings. Months are cut on UTC timestamps, whatever the session's zone.
-- An owner is one cloud's user (another cloud's user of the same id is someone else), and each cloud's
-- lives run to that cloud's own as of: its backups are known only as of its own latest loaded sync.
CREATE OR REPLACE VIEW chargeback_by_user_month AS
WITH lives AS (
    SELECT b.cloud, b.id, b.owner_user_id, b.created_at, b.first_seen_at,
           greatest(coalesce(b.backup_size, 0), 0) AS size_kb,
           coalesce(b.deleted_at, a.as_of) AS ends_at
    FROM backups AS b
    JOIN as_of AS a ON a.cloud = b.cloud
),
spans AS (
    SELECT cloud, id, owner_user_id, size_kb,
           CASE WHEN created_at IS NULL OR created_at > ends_at THEN least(first_seen_at, ends_at)
                ELSE created_at END AT TIME ZONE 'UTC' AS start_utc,
           ends_at AT TIME ZONE 'UTC' AS end_utc
    FROM lives
),
-- Every month the life touches; an empty life touches the month it sits in.
months AS (
    SELECT *, unnest(generate_series(
               date_trunc('month', start_utc),
               date_trunc('month', greatest(start_utc, end_utc - INTERVAL 1 MICROSECOND)),
               INTERVAL 1 MONTH)) AS month_start
    FROM spans
),
totals AS (
    SELECT cloud, owner_user_id, month_start,
           count(*) AS backups,
           sum(size_kb::HUGEINT * (epoch_us(least(end_utc, month_start + INTERVAL 1 MONTH))
                                   - epoch_us(greatest(start_utc, month_start)))) AS kb_us,
           -- kB x microseconds in one GiB-hour (1024² kB x 3,600,000,000 µs), and in one GiB-month.
           3774873600000000::HUGEINT AS per_gib_hour,
           per_gib_hour * 24 * date_diff('day', month_start, month_start + INTERVAL 1 MONTH) AS per_gib_month
    FROM months
    GROUP BY cloud, owner_user_id, month_start
),
figures AS (
    SELECT t.cloud, t.owner_user_id, t.month_start, t.backups,
           ((2 * t.kb_us * 1000000 + t.per_gib_hour) // (2 * t.per_gib_hour))::DECIMAL(38, 0)
               * 0.000001 AS gib_hours,
           ((2 * t.kb_us * 1000000 + t.per_gib_month) // (2 * t.per_gib_month))::DECIMAL(38, 0)
               * 0.000001 AS gib_months
    FROM totals AS t
)
SELECT
    f.cloud,
    f.owner_user_id                                              AS user_id,
    u.login                                                      AS user_login,
    strftime(f.month_start, '%Y-%m')                             AS month,
    f.backups,
    f.gib_hours,
    f.gib_months,
    greatest(f.gib_months - s.free_gib_months, 0)                AS billable_gib_months,
    round(billable_gib_months * s.price_per_gib_month, 2)       AS amount,  -- NULL without a price
    s.currency,
    a.as_of
FROM figures AS f
CROSS JOIN report_settings AS s
JOIN as_of AS a ON a.cloud = f.cloud
LEFT JOIN users AS u ON u.cloud = f.cloud AND u.id = f.owner_user_id
ORDER BY f.cloud, month, user_id NULLS LAST;

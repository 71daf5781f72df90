-- The prices and thresholds the report views apply: one row, rewritten by every sync's load, so that
-- a view read over the warehouse file applies the settings of the sync whose data it shows.
-- The defaults below are those of the settings, so the views answer before any sync has written.
CREATE TABLE report_settings (
    only_row             BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),  -- keeps the table to one row
    free_gib_months      DECIMAL(18, 6) NOT NULL,  -- GiB-months per user and month not billed
    price_per_gib_month  DECIMAL(18, 9),           -- price of one billable GiB-month; NULL: no price, no amounts
    currency             VARCHAR NOT NULL,         -- three letters, upper case
    protection_days      DOUBLE NOT NULL,          -- a newest built backup older than this is a protection gap
    anomaly_factor       DOUBLE NOT NULL,          -- a backup this many times off its VM's median is an anomaly
    updated_at           TIMESTAMPTZ               -- the load that wrote the row; NULL: the defaults
);

INSERT INTO report_settings VALUES (true, 0, NULL, 'USD', 7, 3, NULL);

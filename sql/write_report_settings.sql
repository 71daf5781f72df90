-- The settings the report views apply, as this sync's load was given them (the table's one row).
INSERT OR REPLACE INTO report_settings
VALUES (true, $free_gib_months::DECIMAL(18, 6), $price_per_gib_month::DECIMAL(18, 9), $currency,
        $protection_days, $anomaly_factor, $updated_at);

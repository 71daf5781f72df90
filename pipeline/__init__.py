"""ETL from an OnApp cloud's per-VM backup lists into a DuckDB warehouse with storage reports."""

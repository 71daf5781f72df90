"""The report views exported as CSV, Parquet and PNG charts. No Dagster."""

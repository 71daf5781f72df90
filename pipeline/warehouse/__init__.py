"""The DuckDB warehouse: connection, migrations, run-scoped staging and the one-transaction load. No Dagster."""

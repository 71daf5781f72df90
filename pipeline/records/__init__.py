"""The declared schema of a backup record and its normalization into typed columns. No Dagster."""

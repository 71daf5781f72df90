"""The Dagster wiring: resources, assets, checks, the job and its schedule."""

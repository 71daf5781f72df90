"""The control panels ("clouds") the job syncs, read from BACKUPS_CLOUDS_FILE. No Dagster."""

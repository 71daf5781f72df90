-- Which migration files have been applied to this warehouse, and which view definitions are in force.
CREATE TABLE IF NOT EXISTS schema_version (
    name        VARCHAR PRIMARY KEY,   -- file name, e.g. 002_create_backups.sql or reports/storage_by_user.sql
    kind        VARCHAR NOT NULL,      -- 'migration' (applied once, in order) or 'view' (re-applied when it changes)
    checksum    VARCHAR NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL
);

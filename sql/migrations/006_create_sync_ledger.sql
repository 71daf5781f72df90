-- One row per sync, and the VMs it could not read.
CREATE TABLE sync_runs (
    run_id           VARCHAR PRIMARY KEY,   -- the Dagster run id
    started_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ NOT NULL,
    source_url       VARCHAR NOT NULL,
    format           VARCHAR NOT NULL,
    vms_listed       BIGINT,
    vms_fetched      BIGINT,
    vms_failed       BIGINT,
    vms_vanished     BIGINT,
    backups_seen     BIGINT,
    backups_new      BIGINT,
    backups_changed  BIGINT,
    backups_deleted  BIGINT,
    rejected         BIGINT,
    requests         BIGINT,
    retries          BIGINT,
    status           VARCHAR NOT NULL,      -- ok | partial | failed
    message          VARCHAR
);

CREATE TABLE sync_vm_errors (
    run_id              VARCHAR NOT NULL,
    virtual_machine_id  BIGINT NOT NULL,
    http_status         INTEGER,
    error_kind          VARCHAR NOT NULL,
    message             VARCHAR,
    PRIMARY KEY (run_id, virtual_machine_id)
);

CREATE TABLE backup_rejects (
    run_id              VARCHAR NOT NULL,
    virtual_machine_id  BIGINT,
    backup_id           VARCHAR,            -- as sent, when there was one
    reason              VARCHAR NOT NULL,
    raw_record          JSON NOT NULL       -- secrets stripped
);

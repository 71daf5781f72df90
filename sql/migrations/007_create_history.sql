-- How backups and totals moved: a version per change, totals per sync.
CREATE TABLE backup_versions (
    backup_id           BIGINT NOT NULL,
    valid_from          TIMESTAMPTZ NOT NULL,
    valid_to            TIMESTAMPTZ,          -- NULL: the current version
    run_id              VARCHAR NOT NULL,     -- the sync that saw this version first
    backup_size         BIGINT,
    backup_server_id    BIGINT,
    owner_user_id       BIGINT,
    virtual_machine_id  BIGINT,
    backup_type         VARCHAR,
    marked_for_delete   BOOLEAN,
    built               BOOLEAN,
    locked              BOOLEAN,
    PRIMARY KEY (backup_id, valid_from)
);

CREATE TABLE storage_history (
    run_id       VARCHAR NOT NULL,
    synced_at    TIMESTAMPTZ NOT NULL,
    dimension    VARCHAR NOT NULL,           -- backup_server | user
    key          BIGINT,                     -- backup_server_id or user_id; NULL: none
    backups      BIGINT NOT NULL,
    storage_kb   BIGINT NOT NULL
);

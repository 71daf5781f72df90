-- Many control panels in one warehouse. Ids are unique only within one panel (two panels both have a
-- backup 6117), so every row that came from an API carries the cloud it came from, and every key that came
-- from an API becomes (cloud, id). A warehouse written before holds one cloud: its rows become 'default'.
-- DuckDB cannot change a primary key in place: each table is rebuilt with its rows, in the migration's
-- transaction, and the report views, bound by name, are recreated after it.

-- A cloud name stays bound to the API it was first synced from (it was the whole file's source before).
CREATE TABLE clouds (
    cloud       VARCHAR PRIMARY KEY,   -- [a-z0-9][a-z0-9_-]*, from BACKUPS_CLOUDS_FILE; 'default' without one
    source_url  VARCHAR NOT NULL,      -- the API's URL, claimed by the cloud's first loaded sync
    claimed_at  TIMESTAMPTZ NOT NULL
);
INSERT INTO clouds SELECT 'default', value, now() FROM warehouse_meta WHERE key = 'source_url';
DELETE FROM warehouse_meta WHERE key = 'source_url';

CREATE TABLE backups_by_cloud (
    cloud                          VARCHAR NOT NULL,      -- the control panel the row came from
    id                             BIGINT,
    identifier                     VARCHAR,
    backup_size                    BIGINT,                -- kB
    backup_server_id               BIGINT,                -- NULL: not on a dedicated backup server
    backup_type                    VARCHAR,               -- normal | incremental
    target_type                    VARCHAR,               -- Disk | VirtualMachine
    target_id                      BIGINT,
    disk_id                        BIGINT,
    initiated                      VARCHAR,               -- manual | days | weeks | months | years
    image_type                     VARCHAR,
    marked_for_delete              BOOLEAN,               -- due for deletion, still on disk
    built                          BOOLEAN,
    built_at                       TIMESTAMPTZ,
    created_at                     TIMESTAMPTZ,
    updated_at                     TIMESTAMPTZ,
    locked                         BOOLEAN,
    user_id                        BIGINT,                -- as the API sent it (NULL before API 4.2)
    template_id                    BIGINT,
    volume_id                      BIGINT,
    iqn                            VARCHAR,
    note                           VARCHAR,
    data_store_type                VARCHAR,
    min_disk_size                  BIGINT,                -- GB
    min_memory_size                BIGINT,                -- MB
    operating_system               VARCHAR,
    operating_system_distro        VARCHAR,
    allowed_hot_migrate            BOOLEAN,
    allowed_swap                   BOOLEAN,
    allowed_resize_without_reboot  BOOLEAN,               -- either spelling of the payload
    virtual_machine_id             BIGINT NOT NULL,       -- the VM whose list held it
    owner_user_id                  BIGINT,                -- user_id, else the owner of that VM
    extra                          JSON,                  -- fields the API sent that the schema does not name
    first_seen_at                  TIMESTAMPTZ NOT NULL,
    last_seen_at                   TIMESTAMPTZ NOT NULL,
    deleted_at                     TIMESTAMPTZ,           -- NULL while the backup is still listed
    PRIMARY KEY (cloud, id)
);
INSERT INTO backups_by_cloud SELECT 'default', * FROM backups;
DROP TABLE backups;
ALTER TABLE backups_by_cloud RENAME TO backups;

CREATE TABLE virtual_machines_by_cloud (
    cloud          VARCHAR NOT NULL,      -- the control panel the row came from
    id             BIGINT,
    identifier     VARCHAR,
    label          VARCHAR,
    hostname       VARCHAR,
    user_id        BIGINT,
    first_seen_at  TIMESTAMPTZ NOT NULL,
    last_seen_at   TIMESTAMPTZ NOT NULL,
    deleted_at     TIMESTAMPTZ,           -- left the VM list, or answered 404 on its backups
    PRIMARY KEY (cloud, id)
);
INSERT INTO virtual_machines_by_cloud SELECT 'default', * FROM virtual_machines;
DROP TABLE virtual_machines;
ALTER TABLE virtual_machines_by_cloud RENAME TO virtual_machines;

CREATE TABLE users_by_cloud (
    cloud       VARCHAR NOT NULL,  -- the control panel the row came from
    id          BIGINT,
    login       VARCHAR,
    email       VARCHAR,
    first_name  VARCHAR,
    last_name   VARCHAR,
    status      VARCHAR,
    synced_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (cloud, id)
);
INSERT INTO users_by_cloud SELECT 'default', * FROM users;
DROP TABLE users;
ALTER TABLE users_by_cloud RENAME TO users;

CREATE TABLE backup_servers_by_cloud (
    cloud                   VARCHAR NOT NULL,      -- the control panel the row came from
    id                      BIGINT,
    label                   VARCHAR,
    ip_address              VARCHAR,
    capacity                BIGINT,                -- GB, as OnApp reports it
    enabled                 BOOLEAN,
    backup_server_group_id  BIGINT,
    synced_at               TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (cloud, id)
);
INSERT INTO backup_servers_by_cloud SELECT 'default', * FROM backup_servers;
DROP TABLE backup_servers;
ALTER TABLE backup_servers_by_cloud RENAME TO backup_servers;

CREATE TABLE sync_runs_by_cloud (
    cloud            VARCHAR NOT NULL,      -- the control panel the row came from; one row per cloud per run
    run_id           VARCHAR NOT NULL,      -- the Dagster run id
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
    status           VARCHAR NOT NULL,      -- ok | partial | failed | superseded
    message          VARCHAR,
    PRIMARY KEY (run_id, cloud)
);
INSERT INTO sync_runs_by_cloud SELECT 'default', * FROM sync_runs;
DROP TABLE sync_runs;
ALTER TABLE sync_runs_by_cloud RENAME TO sync_runs;

CREATE TABLE sync_vm_errors_by_cloud (
    cloud               VARCHAR NOT NULL,  -- the control panel the row came from
    run_id              VARCHAR NOT NULL,
    virtual_machine_id  BIGINT NOT NULL,
    http_status         INTEGER,
    error_kind          VARCHAR NOT NULL,
    message             VARCHAR,
    PRIMARY KEY (run_id, cloud, virtual_machine_id)
);
INSERT INTO sync_vm_errors_by_cloud SELECT 'default', * FROM sync_vm_errors;
DROP TABLE sync_vm_errors;
ALTER TABLE sync_vm_errors_by_cloud RENAME TO sync_vm_errors;

CREATE TABLE backup_rejects_by_cloud (
    cloud               VARCHAR NOT NULL,    -- the control panel the row came from
    run_id              VARCHAR NOT NULL,
    virtual_machine_id  BIGINT,
    backup_id           VARCHAR,             -- as sent, when there was one
    reason              VARCHAR NOT NULL,
    raw_record          JSON NOT NULL        -- secrets stripped
);
INSERT INTO backup_rejects_by_cloud SELECT 'default', * FROM backup_rejects;
DROP TABLE backup_rejects;
ALTER TABLE backup_rejects_by_cloud RENAME TO backup_rejects;

CREATE TABLE backup_versions_by_cloud (
    cloud               VARCHAR NOT NULL,        -- the control panel the row came from
    backup_id           BIGINT NOT NULL,
    valid_from          TIMESTAMPTZ NOT NULL,
    valid_to            TIMESTAMPTZ,             -- NULL: the current version
    run_id              VARCHAR NOT NULL,        -- the sync that saw this version first
    backup_size         BIGINT,
    backup_server_id    BIGINT,
    owner_user_id       BIGINT,
    virtual_machine_id  BIGINT,
    backup_type         VARCHAR,
    marked_for_delete   BOOLEAN,
    built               BOOLEAN,
    locked              BOOLEAN,
    PRIMARY KEY (cloud, backup_id, valid_from)
);
INSERT INTO backup_versions_by_cloud SELECT 'default', * FROM backup_versions;
DROP TABLE backup_versions;
ALTER TABLE backup_versions_by_cloud RENAME TO backup_versions;

CREATE TABLE storage_history_by_cloud (
    cloud        VARCHAR NOT NULL,      -- the control panel the row came from
    run_id       VARCHAR NOT NULL,
    synced_at    TIMESTAMPTZ NOT NULL,
    dimension    VARCHAR NOT NULL,      -- backup_server | user
    key          BIGINT,                -- backup_server_id or user_id; NULL: none
    backups      BIGINT NOT NULL,
    storage_kb   BIGINT NOT NULL
);
INSERT INTO storage_history_by_cloud SELECT 'default', * FROM storage_history;
DROP TABLE storage_history;
ALTER TABLE storage_history_by_cloud RENAME TO storage_history;

CREATE TABLE alerts_by_cloud (
    cloud           VARCHAR NOT NULL,      -- the control panel the alert is about
    kind            VARCHAR NOT NULL,      -- sync_failed | backup_server_full | protection_gap | backup_anomaly
    key             VARCHAR NOT NULL,      -- backup server id, VM id, backup id; 'sync' for sync_failed (one per cloud)
    state           VARCHAR NOT NULL,      -- firing | resolved
    message         VARCHAR NOT NULL,      -- what the alert said when it last started firing
    since           TIMESTAMPTZ NOT NULL,  -- when it entered its state
    run_id          VARCHAR NOT NULL,      -- the run that moved it into its state
    notified_state  VARCHAR,               -- the state the webhook last accepted; NULL: never told
    notified_at     TIMESTAMPTZ,
    PRIMARY KEY (kind, cloud, key)
);
INSERT INTO alerts_by_cloud SELECT 'default', * FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_by_cloud RENAME TO alerts;

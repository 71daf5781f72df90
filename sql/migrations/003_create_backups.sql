-- One row per backup id ever seen. Fields keep their OnApp API names; sizes in kB.
CREATE TABLE backups (
    id                             BIGINT PRIMARY KEY,
    identifier                     VARCHAR,
    backup_size                    BIGINT,        -- kB
    backup_server_id               BIGINT,        -- NULL: not on a dedicated backup server
    backup_type                    VARCHAR,       -- normal | incremental
    target_type                    VARCHAR,       -- Disk | VirtualMachine
    target_id                      BIGINT,
    disk_id                        BIGINT,
    initiated                      VARCHAR,       -- manual | days | weeks | months | years
    image_type                     VARCHAR,
    marked_for_delete              BOOLEAN,       -- due for deletion, still on disk
    built                          BOOLEAN,
    built_at                       TIMESTAMPTZ,
    created_at                     TIMESTAMPTZ,
    updated_at                     TIMESTAMPTZ,
    locked                         BOOLEAN,
    user_id                        BIGINT,        -- as the API sent it (NULL before API 4.2)
    template_id                    BIGINT,
    volume_id                      BIGINT,
    iqn                            VARCHAR,
    note                           VARCHAR,
    data_store_type                VARCHAR,
    min_disk_size                  BIGINT,        -- GB
    min_memory_size                BIGINT,        -- MB
    operating_system               VARCHAR,
    operating_system_distro        VARCHAR,
    allowed_hot_migrate            BOOLEAN,
    allowed_swap                   BOOLEAN,
    allowed_resize_without_reboot  BOOLEAN,       -- either spelling of the payload
    virtual_machine_id             BIGINT NOT NULL, -- the VM whose list held it
    owner_user_id                  BIGINT,        -- user_id, else the owner of that VM
    extra                          JSON,          -- fields the API sent that the schema does not name
    first_seen_at                  TIMESTAMPTZ NOT NULL,
    last_seen_at                   TIMESTAMPTZ NOT NULL,
    deleted_at                     TIMESTAMPTZ    -- NULL while the backup is still listed
);

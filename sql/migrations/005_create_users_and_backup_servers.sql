-- Enrichment from the admin-only lists; stay empty when the key may not read them.
CREATE TABLE users (
    id          BIGINT PRIMARY KEY,
    login       VARCHAR,
    email       VARCHAR,
    first_name  VARCHAR,
    last_name   VARCHAR,
    status      VARCHAR,
    synced_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE backup_servers (
    id                      BIGINT PRIMARY KEY,
    label                   VARCHAR,
    ip_address              VARCHAR,
    capacity                BIGINT,            -- GB, as OnApp reports it
    enabled                 BOOLEAN,
    backup_server_group_id  BIGINT,
    synced_at               TIMESTAMPTZ NOT NULL
);

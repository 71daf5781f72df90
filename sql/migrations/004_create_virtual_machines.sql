-- The VMs of the last VM list, and those seen before. Never their passwords.
CREATE TABLE virtual_machines (
    id             BIGINT PRIMARY KEY,
    identifier     VARCHAR,
    label          VARCHAR,
    hostname       VARCHAR,
    user_id        BIGINT,
    first_seen_at  TIMESTAMPTZ NOT NULL,
    last_seen_at   TIMESTAMPTZ NOT NULL,
    deleted_at     TIMESTAMPTZ               -- left the VM list, or answered 404 on its backups
);

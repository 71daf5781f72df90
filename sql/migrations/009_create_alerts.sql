-- The state of every alert the runs raised, by kind and key, and what the webhook was last told of it;
-- and one row per POST to the webhook. The webhook's URL is a secret and is stored nowhere.
CREATE TABLE alerts (
    kind            VARCHAR NOT NULL,      -- sync_failed | backup_server_full | protection_gap | backup_anomaly
    key             VARCHAR NOT NULL,      -- backup server id, VM id, backup id; 'sync' for sync_failed
    state           VARCHAR NOT NULL,      -- firing | resolved
    message         VARCHAR NOT NULL,      -- what the alert said when it last started firing
    since           TIMESTAMPTZ NOT NULL,  -- when it entered its state
    run_id          VARCHAR NOT NULL,      -- the run that moved it into its state
    notified_state  VARCHAR,               -- the state the webhook last accepted; NULL: never told
    notified_at     TIMESTAMPTZ,
    PRIMARY KEY (kind, key)
);

CREATE TABLE alert_deliveries (
    run_id        VARCHAR NOT NULL,
    attempted_at  TIMESTAMPTZ NOT NULL,
    firing        INTEGER NOT NULL,        -- alerts the message told as firing
    resolved      INTEGER NOT NULL,        -- and as resolved
    status        VARCHAR NOT NULL,        -- sent | failed
    http_status   INTEGER,                 -- the last answer's status; NULL: no answer
    tries         INTEGER NOT NULL,
    reason        VARCHAR                  -- why it failed, never the URL
);

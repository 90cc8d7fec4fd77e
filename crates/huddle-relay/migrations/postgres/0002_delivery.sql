-- The delivery service: groups, their members and their ordered logs of
-- MLS ciphertext. Nothing here is readable content: payloads are MLS
-- messages, and group names live inside the encrypted group context.

-- Devices known to this relay, with the public key they authenticate with.
CREATE TABLE devices (
    id          BYTEA PRIMARY KEY NOT NULL,
    user_id     BYTEA NOT NULL,
    public_key  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

-- A conversation: its type and retention, and the MLS epoch the relay has
-- accepted commits up to.
CREATE TABLE groups (
    id              BYTEA PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    retention_secs  BIGINT NOT NULL,
    epoch           BIGINT NOT NULL,
    last_seq        BIGINT NOT NULL,
    created_by      BYTEA NOT NULL,
    created_at      BIGINT NOT NULL
);

-- A device reads a group's log after the entry that added it
-- (joined_seq) and up to the entry that removed it (removed_seq), so that it
-- learns of its own removal.
CREATE TABLE members (
    group_id     BYTEA NOT NULL REFERENCES groups (id),
    device_id    BYTEA NOT NULL,
    joined_seq   BIGINT NOT NULL,
    removed_seq  BIGINT,
    PRIMARY KEY (group_id, device_id)
);
CREATE INDEX members_by_device ON members (device_id);

-- The per-group log. A resend of the same client message id is stored once
-- (the unique sender/client_msg pair); only one commit per epoch is
-- accepted (the partial unique index).
CREATE TABLE log (
    group_id    BYTEA NOT NULL REFERENCES groups (id),
    seq         BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('application', 'commit')),
    epoch       BIGINT NOT NULL,
    sender      BYTEA NOT NULL,
    client_msg  BYTEA NOT NULL,
    expires_at  BIGINT,
    payload     BYTEA NOT NULL,
    stored_at   BIGINT NOT NULL,
    PRIMARY KEY (group_id, seq)
);
CREATE UNIQUE INDEX log_one_per_client_msg ON log (sender, client_msg);
CREATE UNIQUE INDEX log_one_commit_per_epoch ON log (group_id, epoch) WHERE kind = 'commit';
CREATE INDEX log_by_expiry ON log (expires_at) WHERE expires_at IS NOT NULL;

-- Welcomes waiting for the devices a commit added.
CREATE TABLE welcomes (
    device_id  BYTEA NOT NULL,
    group_id   BYTEA NOT NULL REFERENCES groups (id),
    seq        BIGINT NOT NULL,
    welcome    BYTEA NOT NULL,
    PRIMARY KEY (device_id, group_id)
);

-- The delivery service: groups, their members and their ordered logs of
-- MLS ciphertext. Nothing here is readable content: payloads are MLS
-- messages, and group names live inside the encrypted group context.

-- Devices known to this relay, with the public key they authenticate with.
CREATE TABLE devices (
    id          BLOB PRIMARY KEY NOT NULL,
    user_id     BLOB NOT NULL,
    public_key  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- A conversation: its type and retention, and the MLS epoch the relay has
-- accepted commits up to.
CREATE TABLE groups (
    id              BLOB PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    retention_secs  INTEGER NOT NULL,
    epoch           INTEGER NOT NULL,
    last_seq        INTEGER NOT NULL,
    created_by      BLOB NOT NULL,
    created_at      INTEGER NOT NULL
);

-- A device reads a group's log after the entry that added it
-- (joined_seq) and up to the entry that removed it (removed_seq), so that it
-- learns of its own removal.
CREATE TABLE members (
    group_id     BLOB NOT NULL REFERENCES groups (id),
    device_id    BLOB NOT NULL,
    joined_seq   INTEGER NOT NULL,
    removed_seq  INTEGER,
    PRIMARY KEY (group_id, device_id)
);
CREATE INDEX members_by_device ON members (device_id);

-- The per-group log. A resend of the same client message id is stored once
-- (the unique sender/client_msg pair); only one commit per epoch is
-- accepted (the partial unique index).
CREATE TABLE log (
    group_id    BLOB NOT NULL REFERENCES groups (id),
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('application', 'commit')),
    epoch       INTEGER NOT NULL,
    sender      BLOB NOT NULL,
    client_msg  BLOB NOT NULL,
    expires_at  INTEGER,
    payload     BLOB NOT NULL,
    stored_at   INTEGER NOT NULL,
    PRIMARY KEY (group_id, seq)
);
CREATE UNIQUE INDEX log_one_per_client_msg ON log (sender, client_msg);
CREATE UNIQUE INDEX log_one_commit_per_epoch ON log (group_id, epoch) WHERE kind = 'commit';
CREATE INDEX log_by_expiry ON log (expires_at) WHERE expires_at IS NOT NULL;

-- Welcomes waiting for the devices a commit added.
CREATE TABLE welcomes (
    device_id  BLOB NOT NULL,
    group_id   BLOB NOT NULL REFERENCES groups (id),
    seq        INTEGER NOT NULL,
    welcome    BLOB NOT NULL,
    PRIMARY KEY (device_id, group_id)
);

-- A commit's welcome is stored once, however many devices it adds; each
-- added device has a row pointing at it until it has joined (it syncs with
-- the group, or acknowledges past the commit), or the welcome is too old.
CREATE TABLE welcome_blobs (
    group_id    BYTEA NOT NULL REFERENCES groups (id),
    seq         BIGINT NOT NULL,
    welcome     BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (group_id, seq)
);
INSERT INTO welcome_blobs (group_id, seq, welcome, created_at)
    SELECT DISTINCT ON (group_id, seq) group_id, seq, welcome,
           CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT)
    FROM welcomes ORDER BY group_id, seq;

CREATE TABLE pending_welcomes (
    device_id  BYTEA NOT NULL,
    group_id   BYTEA NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (device_id, group_id)
);
CREATE INDEX pending_welcomes_by_commit ON pending_welcomes (group_id, seq);
INSERT INTO pending_welcomes (device_id, group_id, seq)
    SELECT device_id, group_id, seq FROM welcomes;

DROP TABLE welcomes;

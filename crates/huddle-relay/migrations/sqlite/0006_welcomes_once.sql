-- A commit's welcome is stored once, however many devices it adds; each
-- added device has a row pointing at it until it has joined (it syncs with
-- the group, or acknowledges past the commit), or the welcome is too old.
CREATE TABLE welcome_blobs (
    group_id    BLOB NOT NULL REFERENCES groups (id),
    seq         INTEGER NOT NULL,
    welcome     BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (group_id, seq)
);
INSERT INTO welcome_blobs (group_id, seq, welcome, created_at)
    SELECT group_id, seq, MIN(welcome), CAST(strftime('%s', 'now') AS INTEGER) * 1000
    FROM welcomes GROUP BY group_id, seq;

CREATE TABLE pending_welcomes (
    device_id  BLOB NOT NULL,
    group_id   BLOB NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (device_id, group_id)
);
CREATE INDEX pending_welcomes_by_commit ON pending_welcomes (group_id, seq);
INSERT INTO pending_welcomes (device_id, group_id, seq)
    SELECT device_id, group_id, seq FROM welcomes;

DROP TABLE welcomes;

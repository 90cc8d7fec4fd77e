-- How far each device has processed each group's log (its acknowledgements),
-- so that handshake messages everyone has passed can be deleted.
CREATE TABLE cursors (
    device_id  BLOB NOT NULL,
    group_id   BLOB NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (device_id, group_id)
);

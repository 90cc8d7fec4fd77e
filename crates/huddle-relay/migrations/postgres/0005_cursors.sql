-- How far each device has processed each group's log (its acknowledgements),
-- so that handshake messages everyone has passed can be deleted.
CREATE TABLE cursors (
    device_id  BYTEA NOT NULL,
    group_id   BYTEA NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (device_id, group_id)
);

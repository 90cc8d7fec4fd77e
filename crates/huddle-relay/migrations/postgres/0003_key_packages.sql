-- MLS key packages, published by each device and handed out one at a time
-- to whoever adds that device to a group. A single-use package is deleted
-- when claimed; the last-resort one is handed out when none is left.
CREATE TABLE key_packages (
    id           BIGSERIAL PRIMARY KEY,
    device_id    BYTEA NOT NULL,
    last_resort  BIGINT NOT NULL,
    data         BYTEA NOT NULL
);
CREATE INDEX key_packages_by_device ON key_packages (device_id, last_resort, id);

-- The people of the organisation this relay serves, their invites, and the
-- audit log. No message content, ever.
CREATE TABLE users (
    id            BYTEA PRIMARY KEY NOT NULL,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('staff', 'administrator')),
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);

-- An invite is stored as the hash of its secret: the relay cannot recreate
-- a link it handed out. It names the person it will create (user_id).
CREATE TABLE invites (
    user_id       BYTEA PRIMARY KEY NOT NULL,
    secret_hash   BYTEA NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('staff', 'administrator')),
    created_by    BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT,
    revoked_at    BIGINT
);

-- Who did what to whom and when.
CREATE TABLE audit (
    id       BIGSERIAL PRIMARY KEY,
    at       BIGINT NOT NULL,
    actor    BYTEA,
    action   TEXT NOT NULL,
    subject  TEXT NOT NULL
);

-- The people of the organisation this relay serves, their invites, and the
-- audit log. No message content, ever.
CREATE TABLE users (
    id            BLOB PRIMARY KEY NOT NULL,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('staff', 'administrator')),
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);

-- An invite is stored as the hash of its secret: the relay cannot recreate
-- a link it handed out. It names the person it will create (user_id).
CREATE TABLE invites (
    user_id       BLOB PRIMARY KEY NOT NULL,
    secret_hash   BLOB NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('staff', 'administrator')),
    created_by    BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER,
    revoked_at    INTEGER
);

-- Who did what to whom and when.
CREATE TABLE audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    actor    BLOB,
    action   TEXT NOT NULL,
    subject  TEXT NOT NULL
);

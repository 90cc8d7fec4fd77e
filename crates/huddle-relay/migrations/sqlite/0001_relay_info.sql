-- Facts about this relay installation itself (never about people or messages).
CREATE TABLE relay_info (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
INSERT INTO relay_info (key, value)
VALUES ('created_at', CAST(CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) AS TEXT));

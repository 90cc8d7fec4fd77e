-- Facts about this relay installation itself (never about people or messages).
CREATE TABLE relay_info (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
INSERT INTO relay_info (key, value)
VALUES ('created_at', CAST(CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT) AS TEXT));

-- When a person's access ends (agency and bank staff): the relay signs her
-- out then, as an administrator would. An invite carries it to the person it
-- makes. Only dates: nothing about why.
ALTER TABLE users ADD COLUMN access_ends_at INTEGER;
ALTER TABLE invites ADD COLUMN access_ends_at INTEGER;
CREATE INDEX users_by_access_end ON users (access_ends_at)
    WHERE access_ends_at IS NOT NULL AND revoked_at IS NULL;

-- When an administrator last confirmed who is in each group; the next
-- review falls due one review interval after it (or after the group was
-- made).
ALTER TABLE groups ADD COLUMN reviewed_at INTEGER;

-- When the group's encryption was last restarted (a repair after its phones
-- stopped at a commit they could not open): a restart waits a minute after
-- the last, so that a member cannot keep a group restarting.
ALTER TABLE groups ADD COLUMN restarted_at INTEGER;

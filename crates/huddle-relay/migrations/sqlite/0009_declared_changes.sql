-- The membership change a commit declared, as its sender submitted it
-- (postcard-encoded `MembershipChange`): delivered with the commit so that
-- every member compares it with what the commit does.
ALTER TABLE log ADD COLUMN declared BLOB;

-- When each device last signed in, for its owner's "Your phones" (so that
-- she can tell which of them is the lost one).
ALTER TABLE devices ADD COLUMN last_seen INTEGER;

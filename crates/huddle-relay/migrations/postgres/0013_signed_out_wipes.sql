-- When a signed-out phone was told to wipe itself (after proving it was that
-- phone) or wiped itself after ten wrong passcodes, for the administrator's
-- list of signed-out phones. And the public key a locked phone signs its
-- unlock requests with, kept on the device when its lock's share and
-- verifier are destroyed: a signed-out phone on its lock screen can then
-- still prove that it is the phone being told, and nobody else can mark it
-- wiped. The key is public: it opens nothing.
ALTER TABLE devices ADD COLUMN wiped_at BIGINT;
ALTER TABLE devices ADD COLUMN lock_key BYTEA;
UPDATE devices SET lock_key = (SELECT l.lock_key FROM passcode_locks l WHERE l.device_id = devices.id);

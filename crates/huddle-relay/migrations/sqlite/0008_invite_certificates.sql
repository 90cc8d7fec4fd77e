-- An invite's certificate: the chain from the organisation key to the
-- invite's key, made on the inviting administrator's phone. Public; the
-- relay hands it to the person who redeems the invite and cannot make one.
ALTER TABLE invites ADD COLUMN certificate BLOB;

-- A phone's passcode lock (SECURITY.md, "The lost phone"): the share the
-- relay releases on a correct proof of the passcode, the verifier it checks
-- proofs with, the public key that signs unlock requests (so that nobody
-- without the phone spends its guesses), wrong guesses in a row, and the
-- nonce an unlock must answer. The share and the verifier are deleted when
-- the device is revoked or guessed at ten times: a copy of the phone's
-- profile then never opens.
CREATE TABLE passcode_locks (
    device_id      BLOB PRIMARY KEY NOT NULL,
    lock_key       BLOB NOT NULL,
    verifier       BLOB NOT NULL,
    share          BLOB NOT NULL,
    failures       INTEGER NOT NULL DEFAULT 0,
    nonce          BLOB,
    nonce_expires  INTEGER,
    set_at         INTEGER NOT NULL
);

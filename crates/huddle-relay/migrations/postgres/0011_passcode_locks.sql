-- A phone's passcode lock (SECURITY.md, "The lost phone"): the share the
-- relay releases on a correct proof of the passcode, the verifier it checks
-- proofs with, the public key that signs unlock requests (so that nobody
-- without the phone spends its guesses), wrong guesses in a row, and the
-- nonce an unlock must answer. The share and the verifier are deleted when
-- the device is revoked or guessed at ten times: a copy of the phone's
-- profile then never opens.
CREATE TABLE passcode_locks (
    device_id      BYTEA PRIMARY KEY NOT NULL,
    lock_key       BYTEA NOT NULL,
    verifier       BYTEA NOT NULL,
    share          BYTEA NOT NULL,
    failures       BIGINT NOT NULL DEFAULT 0,
    nonce          BYTEA,
    nonce_expires  BIGINT,
    set_at         BIGINT NOT NULL
);

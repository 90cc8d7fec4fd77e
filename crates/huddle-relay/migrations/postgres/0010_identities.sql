-- Who each device is, and who checked whom in person. Public: certificate
-- chains name a person and a key; attestations say that one device checked
-- another's key. Phones check both themselves; the relay cannot make either.
ALTER TABLE devices ADD COLUMN certificate BYTEA;

CREATE TABLE attestations (
    attester_device  BYTEA NOT NULL,
    subject_device   BYTEA NOT NULL,
    subject_user     BYTEA NOT NULL,
    attestation      BYTEA NOT NULL,
    made_at          BIGINT NOT NULL,
    PRIMARY KEY (attester_device, subject_device)
);
CREATE INDEX attestations_by_subject ON attestations (subject_user, made_at);

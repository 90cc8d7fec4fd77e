-- Claiming key packages finds a person's devices by person: without this
-- each claim read every device the relay knows.
CREATE INDEX devices_by_user ON devices (user_id);

-- Every stored log entry is announced to the relay processes sharing this
-- database by the statement that stores it, rather than by a `pg_notify`
-- round trip of its own before each commit: one round trip fewer for every
-- message. The notification is transactional like the insert: it is sent
-- if and only if the entry's transaction commits, and one undone by a
-- rolled-back savepoint is never sent. The line format is the relay's
-- `Announcement::Entry` (`e:GROUP:SEQ`, the id in lowercase hex) on the
-- channel `huddle_bus`.
CREATE FUNCTION announce_stored_entry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('huddle_bus', 'e:' || encode(NEW.group_id, 'hex') || ':' || NEW.seq::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER entry_announced AFTER INSERT ON log
    FOR EACH ROW EXECUTE FUNCTION announce_stored_entry();

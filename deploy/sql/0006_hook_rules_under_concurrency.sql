-- queue-hooks schema, version 6: the hook rules of 0001 hold for two admins at once.
-- assert_hook_ok read the hook's queue and schema without locking them, and the guards of
-- queues and schemas read the hooks without seeing uncommitted ones: a hook added while another
-- transaction changed its queue's type or domain (or moved its schema), each fine alone, both
-- committed, and left a hook the database must refuse (contract §2). Now the check locks the
-- queue and the schema it read (FOR SHARE) until its transaction ends: a concurrent change of
-- either waits, then meets the committed hook (or the hook's check meets the committed change)
-- and is refused in the usual words. SECURITY DEFINER: locking needs UPDATE on the tables, and
-- whoever may write a hook may not be able to write queues. A change of a hook that leaves its
-- queue, event and schema alone (the worker's `enabled = false` after a 410) checks and locks
-- nothing, as nothing it changed can break the rules.

CREATE OR REPLACE FUNCTION queue_hooks.assert_hook_ok(hook_id bigint, q_id bigint, ev text, s_id bigint)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    q queue_hooks.queues%ROWTYPE;
    s_domain bigint;
BEGIN
    SELECT * INTO q FROM queue_hooks.queues WHERE id = q_id FOR SHARE;
    SELECT domain_id INTO s_domain FROM queue_hooks.schemas WHERE id = s_id FOR SHARE;
    IF q.id IS NULL OR s_domain IS NULL THEN
        RETURN;  -- the foreign keys report a missing queue or schema in their own words
    END IF;
    IF q.domain_id <> s_domain THEN
        RAISE EXCEPTION 'hook % refused: schema % is in domain %, but queue % is in domain % (event %)',
            hook_id, s_id, s_domain, q_id, q.domain_id, ev
            USING ERRCODE = 'check_violation', HINT = 'a hook may only call a schema of its queue''s domain';
    END IF;
    IF NOT queue_hooks.type_fires(q.type, ev) THEN
        RAISE EXCEPTION 'hook % refused: queue % (%) never fires event "%" (schema %); it fires: %',
            hook_id, q_id, queue_hooks.type_label(q.type), ev, s_id,
            queue_hooks.events_fired(q.type)
            USING ERRCODE = 'check_violation';
    END IF;
END $$;

CREATE OR REPLACE FUNCTION queue_hooks.hooks_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR (NEW.queue_id, NEW.event, NEW.schema_id)
            IS DISTINCT FROM (OLD.queue_id, OLD.event, OLD.schema_id) THEN
        PERFORM queue_hooks.assert_hook_ok(NEW.id, NEW.queue_id, NEW.event, NEW.schema_id);
    END IF;
    -- As 0003: who acts (the API's token), NULL for any other writer.
    NEW.updated_by := nullif(current_setting('queue_hooks.actor', true), '')::bigint;
    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;

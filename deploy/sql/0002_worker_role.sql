-- queue-hooks schema, version 2: the least-privilege role the worker runs as (issue 6).
-- `queue_hooks_worker` is NOLOGIN: give a login role its rights with
--   CREATE ROLE queue_hooks_app LOGIN PASSWORD '...' IN ROLE queue_hooks_worker;
-- (deploy/sql/README.md). It may read the three tables and the revision, switch a hook off
-- after 410 Gone, and nothing else: no inserts, no deletes, no other column, no DDL.
-- LISTEN and NOTIFY need no grant. Every later migration grants what the worker needs of it.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'queue_hooks_worker') THEN
        IF NOT (SELECT rolsuper OR rolcreaterole FROM pg_catalog.pg_roles
                WHERE rolname = current_user) THEN
            RAISE NOTICE 'role queue_hooks_worker not created: % may not create roles; '
                'a DBA can create it and apply the grants of deploy/sql/0002_worker_role.sql',
                current_user;
            RETURN;
        END IF;
        CREATE ROLE queue_hooks_worker NOLOGIN;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO queue_hooks_worker', current_database());
    GRANT USAGE ON SCHEMA queue_hooks TO queue_hooks_worker;
    -- The hook cache and the revision poll; schema_migrations to see the database is current.
    GRANT SELECT ON queue_hooks.queues, queue_hooks.schemas, queue_hooks.hooks,
        queue_hooks.revision, queue_hooks.schema_migrations TO queue_hooks_worker;
    -- 410 Gone disables the hook (contract §5); the statement trigger then bumps the revision.
    GRANT UPDATE (enabled) ON queue_hooks.hooks TO queue_hooks_worker;
    GRANT UPDATE (n) ON queue_hooks.revision TO queue_hooks_worker;
END $$;

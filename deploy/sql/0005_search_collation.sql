-- queue-hooks schema, version 5: a collation that folds the case of every alphabet, for the
-- searches of the admin API, the page and the commands (`q`, contract §8: case-insensitive).
-- ILIKE and lower() fold case by the database's own LC_CTYPE, and a database made with the C
-- locale (initdb --no-locale, as many are) folds ASCII only: `Продажи` was not found by
-- `продажи`. The searches name this collation instead. ICU's root locale where PostgreSQL has
-- ICU, else libc's C.UTF-8, else the database's own LC_CTYPE (as before: no worse).

DO $$
BEGIN
    BEGIN
        CREATE COLLATION queue_hooks.folded (provider = icu, locale = 'und');
    EXCEPTION WHEN OTHERS THEN
        BEGIN
            CREATE COLLATION queue_hooks.folded (provider = libc, locale = 'C.UTF-8');
        EXCEPTION WHEN OTHERS THEN  -- "default" itself cannot be copied
            EXECUTE format(
                'CREATE COLLATION queue_hooks.folded (provider = libc, locale = %L)',
                (SELECT datctype FROM pg_database WHERE datname = current_database())
            );
        END;
    END;
END
$$;

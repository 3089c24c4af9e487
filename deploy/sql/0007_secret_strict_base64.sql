-- queue-hooks schema, version 7: a plain secret is `whsec_` + strict base64 (contract §2), as
-- `schemas add` and the API check it. PostgreSQL's decode(..., 'base64') skips white space, so
-- the table took `whsec_` secrets with spaces or line breaks inside, which a receiver's strict
-- decoder refuses (and the worker signed with the white space dropped). A row already holding
-- such a secret keeps it until the row is next updated: then the secret must be fixed too.

CREATE OR REPLACE FUNCTION queue_hooks.secret_ok(secret text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF secret IS NULL OR secret LIKE 'enc:%' THEN
        RETURN true;
    END IF;
    IF secret NOT LIKE 'whsec\_%' OR substr(secret, 7) !~ '^[A-Za-z0-9+/]*={0,2}$' THEN
        RETURN false;
    END IF;
    RETURN length(decode(substr(secret, 7), 'base64')) BETWEEN 24 AND 64;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN false;
END $$;

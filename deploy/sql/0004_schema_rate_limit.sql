-- queue-hooks schema, version 4: a rate limit per schema (issue 13; docs/receivers.md).
-- `max_per_second`: deliveries a second the receiver accepts, NULL for no limit. A positive,
-- finite number (fractions allowed: 0.5 is one every two seconds). Deliveries beyond it wait
-- their turn; with several worker processes each takes its share.
-- Independent of 0003 (API tokens): the runner applies every missing number in order, so a
-- database that got 0004 first takes 0003 when it arrives.
-- The worker role's SELECT on queue_hooks.schemas (0002) covers the new column.

ALTER TABLE queue_hooks.schemas
    ADD COLUMN max_per_second double precision NULL
        CONSTRAINT schemas_max_per_second_check
        CHECK (max_per_second > 0 AND max_per_second < 'Infinity');
-- 'NaN' sorts above 'Infinity' in PostgreSQL, so the upper bound refuses it too.

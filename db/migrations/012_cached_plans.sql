-- Every batch the writer sends spent nearly half of its database time making plans, not using
-- them (pg_stat_statements, 1,200 calls at 40 calls/s: 1.6 of 3.6 s):
--   * refresh_calls(), refresh_callbacks() and refresh_caller_flags() were LANGUAGE sql.
--     PostgreSQL parses, analyses and plans the body of such a function on every call, and the
--     caller's PERFORM parsed it once more, trying to inline it.
--   * siaga_text_array(), also LANGUAGE sql, runs once for each event of a refreshed call; its
--     sub-SELECT keeps it from being inlined, so it too was planned on every call.
--   * ingest_events() planned each of its statements afresh for every batch
--     (004_ingest_custom_plans.sql), to keep away from a generic plan made while the tables
--     were nearly empty, which scanned them whole.
-- The three refresh functions become PL/pgSQL around the very same statement, so that it is
-- planned once per connection, and they and ingest_events() keep that one plan. Sequential scans are off inside them
-- instead: each of their statements finds its rows by key (event ids, call ids, flag ids), so
-- an index is the right path at any table size, and a plan made on an empty table is no longer
-- a trap. siaga_text_array() is written again in PL/pgSQL.
DO $$
DECLARE
    f record;
BEGIN
    FOR f IN
        SELECT p.oid, p.proname, p.prosrc
        FROM pg_proc p
        JOIN pg_language l ON l.oid = p.prolang
        WHERE p.proname IN ('refresh_calls', 'refresh_callbacks', 'refresh_caller_flags')
          AND p.pronamespace = current_schema()::regnamespace
          AND l.lanname = 'sql'
    LOOP
        EXECUTE format(
            'CREATE OR REPLACE FUNCTION %I(%s) RETURNS void LANGUAGE plpgsql AS %L',
            f.proname,
            pg_get_function_arguments(f.oid),
            E'BEGIN\n' || rtrim(f.prosrc, E' \n\t;') || E';\nEND');
    END LOOP;
END $$;

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'ingest_events(uuid[], text[], text[], text[], timestamptz[], jsonb[])',
        'refresh_calls(text[])',
        'refresh_callbacks(text[])',
        'refresh_caller_flags(uuid[])']::regprocedure[]
    LOOP
        EXECUTE format('ALTER FUNCTION %s RESET ALL', f);
        EXECUTE format('ALTER FUNCTION %s SET plan_cache_mode = force_generic_plan', f);
        EXECUTE format('ALTER FUNCTION %s SET enable_seqscan = off', f);
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION siaga_text_array(p jsonb) RETURNS text[] LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF jsonb_typeof(p) = 'array' THEN
        RETURN ARRAY(SELECT x FROM jsonb_array_elements_text(p) AS x WHERE x IS NOT NULL);
    END IF;
    RETURN '{}';
END $$;

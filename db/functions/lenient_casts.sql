-- Lenient casts: a malformed value in an event becomes NULL (or an empty array) in the derived
-- row instead of failing the batch; the event itself is kept verbatim in call_events.

CREATE OR REPLACE FUNCTION siaga_int(p text)
RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p ~ '^\s*-?\d{1,9}\s*$' THEN p::integer END
$$;

CREATE OR REPLACE FUNCTION siaga_timestamptz(p text)
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN p::timestamptz;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION siaga_uuid(p text)
RETURNS uuid LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN p::uuid;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END $$;

-- PL/pgSQL: it runs once for each event of a refreshed call, and as LANGUAGE sql its sub-SELECT
-- kept it from being inlined, so it was planned again on every call.
CREATE OR REPLACE FUNCTION siaga_text_array(p jsonb)
RETURNS text[] LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF jsonb_typeof(p) = 'array' THEN
        RETURN ARRAY(SELECT x FROM jsonb_array_elements_text(p) AS x WHERE x IS NOT NULL);
    END IF;
    RETURN '{}';
END $$;

-- Ingest: one call per batch from the writer. Inserts events idempotently (ON CONFLICT DO
-- NOTHING on event_id) and re-derives the rows the new events touch, from all the events
-- of those calls/operators/flags: the result depends on the set of events, not on their order.

-- Lenient casts: a malformed value in an event becomes NULL in the derived row instead of
-- failing the batch (the event itself is kept verbatim in call_events).
CREATE FUNCTION siaga_int(p text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p ~ '^\s*-?\d{1,9}\s*$' THEN p::integer END
$$;

CREATE FUNCTION siaga_timestamptz(p text) RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN p::timestamptz;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END $$;

CREATE FUNCTION siaga_uuid(p text) RETURNS uuid LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN p::uuid;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END $$;

CREATE FUNCTION siaga_text_array(p jsonb) RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(p) = 'array'
        THEN ARRAY(SELECT x FROM jsonb_array_elements_text(p) AS x WHERE x IS NOT NULL)
        ELSE '{}'::text[] END
$$;

CREATE FUNCTION refresh_calls(p_call_ids text[]) RETURNS void LANGUAGE sql AS $$
    WITH agg AS (
        SELECT
            e.call_id,
            (array_agg(e.data ->> 'caller_number' ORDER BY e.at, e.event_id)
                FILTER (WHERE e.kind = 'call_arrived'))[1] AS caller_number,
            (array_agg(e.data ->> 'caller_name' ORDER BY e.at, e.event_id)
                FILTER (WHERE e.kind = 'call_arrived'))[1] AS caller_name,
            (array_agg(e.data ->> 'channel_id' ORDER BY e.at, e.event_id)
                FILTER (WHERE e.kind = 'call_arrived'))[1] AS channel_id,
            min(e.at) FILTER (WHERE e.kind = 'call_arrived') AS arrived_at,
            min(e.at) FILTER (WHERE e.kind = 'call_classified') AS classified_at,
            min(e.at) FILTER (WHERE e.kind = 'call_queued') AS queued_at,
            min(e.at) FILTER (WHERE e.kind = 'call_offered') AS offered_at,
            min(e.at) FILTER (WHERE e.kind = 'call_connected') AS connected_at,
            min(e.at) FILTER (WHERE e.kind = 'call_abandoned') AS abandoned_at,
            min(e.at) FILTER (WHERE e.kind = 'call_ended') AS ended_at,
            -- A call may be reclassified: the latest classification wins.
            (array_agg(e.data ->> 'category' ORDER BY e.at DESC, e.event_id DESC)
                FILTER (WHERE e.kind = 'call_classified'))[1] AS category,
            (array_agg(siaga_int(e.data ->> 'priority') ORDER BY e.at DESC, e.event_id DESC)
                FILTER (WHERE e.kind = 'call_classified'))[1] AS priority,
            (array_agg(e.data ->> 'language' ORDER BY e.at DESC, e.event_id DESC)
                FILTER (WHERE e.kind = 'ivr_step' AND e.data ->> 'language' IS NOT NULL))[1]
                AS language,
            -- The operator who answered is the first one connected (later ones are transfers).
            (array_agg(e.operator_id ORDER BY e.at, e.event_id)
                FILTER (WHERE e.kind = 'call_connected'))[1] AS operator_id,
            (array_agg(e.data ->> 'hangup_by' ORDER BY e.at, e.event_id)
                FILTER (WHERE e.kind = 'call_ended'))[1] AS hangup_by,
            (array_agg(e.data ->> 'reason' ORDER BY e.at, e.event_id)
                FILTER (WHERE e.kind = 'call_ended'))[1] AS end_reason,
            count(*) FILTER (WHERE e.kind = 'call_offered') AS offers,
            count(*) AS events
        FROM call_events e
        WHERE e.call_id = ANY (p_call_ids)
        GROUP BY e.call_id
    ),
    flags AS (
        SELECT e.call_id, array_agg(DISTINCT f ORDER BY f) AS flags
        FROM call_events e
        CROSS JOIN LATERAL unnest(
            CASE WHEN e.kind = 'flag_set' THEN ARRAY[e.data ->> 'flag']
                 ELSE siaga_text_array(e.data -> 'flags') END) AS f
        WHERE e.call_id = ANY (p_call_ids)
          AND e.kind IN ('call_arrived', 'call_classified', 'flag_set')
          AND f IS NOT NULL
        GROUP BY e.call_id
    ),
    agencies AS (
        SELECT e.call_id, array_agg(DISTINCT e.data ->> 'agency' ORDER BY e.data ->> 'agency')
            AS agencies
        FROM call_events e
        WHERE e.call_id = ANY (p_call_ids)
          AND e.kind IN ('call_transferred', 'agency_added')
          AND e.data ->> 'agency' IS NOT NULL
        GROUP BY e.call_id
    )
    INSERT INTO calls AS c (
        call_id, caller_number, caller_name, channel_id, arrived_at, classified_at, queued_at,
        offered_at, connected_at, abandoned_at, ended_at, category, priority, language,
        operator_id, outcome, wait_seconds, talk_seconds, hangup_by, end_reason, flags,
        agencies, offers, events, updated_at)
    SELECT
        a.call_id, a.caller_number, a.caller_name, a.channel_id, a.arrived_at, a.classified_at,
        a.queued_at, a.offered_at, a.connected_at, a.abandoned_at, a.ended_at, a.category,
        a.priority, a.language, a.operator_id,
        CASE WHEN a.connected_at IS NOT NULL THEN 'answered'
             WHEN a.abandoned_at IS NOT NULL THEN 'abandoned'
             WHEN 'fallback' = ANY (coalesce(f.flags, '{}')) THEN 'fallback'
             WHEN a.ended_at IS NOT NULL THEN 'unanswered'
             ELSE 'ongoing' END,
        round(extract(epoch FROM coalesce(a.connected_at, a.abandoned_at) - a.arrived_at), 3),
        round(extract(epoch FROM a.ended_at - a.connected_at), 3),
        a.hangup_by, a.end_reason, coalesce(f.flags, '{}'), coalesce(g.agencies, '{}'),
        a.offers, a.events, now()
    FROM agg a
    LEFT JOIN flags f USING (call_id)
    LEFT JOIN agencies g USING (call_id)
    ON CONFLICT (call_id) DO UPDATE SET
        caller_number = EXCLUDED.caller_number,
        caller_name = EXCLUDED.caller_name,
        channel_id = EXCLUDED.channel_id,
        arrived_at = EXCLUDED.arrived_at,
        classified_at = EXCLUDED.classified_at,
        queued_at = EXCLUDED.queued_at,
        offered_at = EXCLUDED.offered_at,
        connected_at = EXCLUDED.connected_at,
        abandoned_at = EXCLUDED.abandoned_at,
        ended_at = EXCLUDED.ended_at,
        category = EXCLUDED.category,
        priority = EXCLUDED.priority,
        language = EXCLUDED.language,
        operator_id = EXCLUDED.operator_id,
        outcome = EXCLUDED.outcome,
        wait_seconds = EXCLUDED.wait_seconds,
        talk_seconds = EXCLUDED.talk_seconds,
        hangup_by = EXCLUDED.hangup_by,
        end_reason = EXCLUDED.end_reason,
        flags = EXCLUDED.flags,
        agencies = EXCLUDED.agencies,
        offers = EXCLUDED.offers,
        events = EXCLUDED.events,
        updated_at = EXCLUDED.updated_at
$$;

CREATE FUNCTION refresh_callbacks(p_call_ids text[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO callbacks AS b (
        call_id, abandoned_at, position, status, owner, outcome, notes, updated_at)
    SELECT
        e.call_id,
        min(e.at) FILTER (WHERE e.kind = 'call_abandoned'),
        (array_agg(siaga_int(e.data ->> 'position') ORDER BY e.at, e.event_id)
            FILTER (WHERE e.kind = 'call_abandoned'))[1],
        coalesce((array_agg(e.data ->> 'status' ORDER BY e.at DESC, e.event_id DESC)
            FILTER (WHERE e.kind = 'callback_updated' AND e.data ->> 'status' IS NOT NULL))[1],
            'pending'),
        (array_agg(e.data ->> 'owner' ORDER BY e.at DESC, e.event_id DESC)
            FILTER (WHERE e.kind = 'callback_updated' AND e.data ->> 'owner' IS NOT NULL))[1],
        (array_agg(e.data ->> 'outcome' ORDER BY e.at DESC, e.event_id DESC)
            FILTER (WHERE e.kind = 'callback_updated' AND e.data ->> 'outcome' IS NOT NULL))[1],
        (array_agg(e.data ->> 'notes' ORDER BY e.at DESC, e.event_id DESC)
            FILTER (WHERE e.kind = 'callback_updated' AND e.data ->> 'notes' IS NOT NULL))[1],
        max(e.at) FILTER (WHERE e.kind = 'callback_updated')
    FROM call_events e
    WHERE e.call_id = ANY (p_call_ids)
      AND e.kind IN ('call_abandoned', 'callback_updated')
    GROUP BY e.call_id
    ON CONFLICT (call_id) DO UPDATE SET
        abandoned_at = EXCLUDED.abandoned_at,
        position = EXCLUDED.position,
        status = EXCLUDED.status,
        owner = EXCLUDED.owner,
        outcome = EXCLUDED.outcome,
        notes = EXCLUDED.notes,
        updated_at = EXCLUDED.updated_at
$$;

CREATE FUNCTION refresh_caller_flags(p_flag_ids uuid[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO caller_flags AS f (
        flag_id, number, flag, reason, set_by, set_at, expires_at,
        cleared_at, cleared_by, clear_reason)
    SELECT
        s.event_id, s.data ->> 'number', s.data ->> 'flag', s.data ->> 'reason',
        s.data ->> 'set_by', s.at, siaga_timestamptz(s.data ->> 'until'),
        c.at, c.data ->> 'cleared_by', c.data ->> 'reason'
    FROM call_events s
    LEFT JOIN LATERAL (
        SELECT x.at, x.data
        FROM call_events x
        WHERE x.kind = 'caller_flag_cleared' AND x.data ->> 'flag_id' = s.event_id::text
        ORDER BY x.at, x.event_id
        LIMIT 1
    ) c ON true
    WHERE s.event_id = ANY (p_flag_ids)
      AND s.kind = 'caller_flag_set'
      AND s.data ->> 'number' IS NOT NULL
      AND s.data ->> 'flag' IS NOT NULL
    ON CONFLICT (flag_id) DO UPDATE SET
        cleared_at = EXCLUDED.cleared_at,
        cleared_by = EXCLUDED.cleared_by,
        clear_reason = EXCLUDED.clear_reason
$$;

CREATE FUNCTION ingest_events(
    p_ids uuid[],
    p_kinds text[],
    p_call_ids text[],
    p_operator_ids text[],
    p_ats timestamptz[],
    p_data jsonb[]
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    new_ids uuid[];
    touched_calls text[];
    touched_callbacks text[];
    touched_flags uuid[];
BEGIN
    WITH ins AS (
        INSERT INTO call_events (event_id, kind, call_id, operator_id, at, data)
        SELECT * FROM unnest(p_ids, p_kinds, p_call_ids, p_operator_ids, p_ats, p_data)
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id
    )
    SELECT coalesce(array_agg(event_id), '{}') INTO new_ids FROM ins;

    IF cardinality(new_ids) = 0 THEN
        RETURN 0;  -- all already recorded: a replay
    END IF;

    SELECT
        coalesce(array_agg(DISTINCT e.call_id) FILTER (WHERE e.call_id IS NOT NULL), '{}'),
        coalesce(array_agg(DISTINCT e.call_id)
            FILTER (WHERE e.call_id IS NOT NULL
                    AND e.kind IN ('call_abandoned', 'callback_updated')), '{}'),
        coalesce(array_agg(DISTINCT
            CASE WHEN e.kind = 'caller_flag_set' THEN e.event_id
                 ELSE siaga_uuid(e.data ->> 'flag_id') END)
            FILTER (WHERE e.kind IN ('caller_flag_set', 'caller_flag_cleared')), '{}')
    INTO touched_calls, touched_callbacks, touched_flags
    FROM call_events e
    WHERE e.event_id = ANY (new_ids);

    INSERT INTO operator_state_changes (change_id, operator_id, state, reason, at)
    SELECT e.event_id, e.operator_id, e.data ->> 'state', e.data ->> 'reason', e.at
    FROM call_events e
    WHERE e.event_id = ANY (new_ids)
      AND e.kind = 'operator_state'
      AND e.operator_id IS NOT NULL
      AND e.data ->> 'state' IS NOT NULL
    ON CONFLICT (change_id) DO NOTHING;

    -- The operator's current state is its latest state event, whatever order they arrive in.
    INSERT INTO operators AS o (operator_id, name, state, state_reason, state_at, first_seen_at)
    SELECT
        e.operator_id,
        (array_agg(e.data ->> 'name' ORDER BY e.at DESC, e.event_id DESC)
            FILTER (WHERE e.kind = 'operator_state' AND e.data ->> 'name' IS NOT NULL))[1],
        (array_agg(e.data ->> 'state' ORDER BY e.at DESC, e.event_id DESC)
            FILTER (WHERE e.kind = 'operator_state' AND e.data ->> 'state' IS NOT NULL))[1],
        (array_agg(e.data ->> 'reason' ORDER BY e.at DESC, e.event_id DESC)
            FILTER (WHERE e.kind = 'operator_state' AND e.data ->> 'state' IS NOT NULL))[1],
        max(e.at) FILTER (WHERE e.kind = 'operator_state' AND e.data ->> 'state' IS NOT NULL),
        min(e.at)
    FROM call_events e
    WHERE e.event_id = ANY (new_ids) AND e.operator_id IS NOT NULL
    GROUP BY e.operator_id
    ON CONFLICT (operator_id) DO UPDATE SET
        first_seen_at = least(o.first_seen_at, EXCLUDED.first_seen_at),
        name = coalesce(EXCLUDED.name, o.name),
        state = CASE WHEN EXCLUDED.state_at >= o.state_at OR o.state_at IS NULL
                     THEN coalesce(EXCLUDED.state, o.state) ELSE o.state END,
        state_reason = CASE WHEN EXCLUDED.state_at >= o.state_at OR o.state_at IS NULL
                            THEN EXCLUDED.state_reason ELSE o.state_reason END,
        state_at = greatest(o.state_at, EXCLUDED.state_at);

    INSERT INTO dispositions (disposition_id, call_id, operator_id, verdict, notes, location, at)
    SELECT e.event_id, e.call_id, e.operator_id, e.data ->> 'verdict', e.data ->> 'notes',
           e.data -> 'location', e.at
    FROM call_events e
    WHERE e.event_id = ANY (new_ids) AND e.kind = 'disposition'
    ON CONFLICT (disposition_id) DO NOTHING;

    IF cardinality(touched_calls) > 0 THEN
        PERFORM refresh_calls(touched_calls);
    END IF;
    IF cardinality(touched_callbacks) > 0 THEN
        PERFORM refresh_callbacks(touched_callbacks);
    END IF;
    IF cardinality(touched_flags) > 0 THEN
        PERFORM refresh_caller_flags(touched_flags);
    END IF;
    RETURN cardinality(new_ids);
END $$;

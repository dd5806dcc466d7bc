-- Ingest: one call per batch from the record writer (db/ingest.py). Inserts events
-- idempotently (ON CONFLICT DO NOTHING on event_id) and re-derives the rows the new events touch
-- from all the events of those calls/operators/flags: the result depends on the set of events,
-- not on their order.
--
-- Its statements find their rows by key; see refresh_calls.sql for why the plan is generic and
-- sequential scans are off.

CREATE OR REPLACE FUNCTION ingest_events(
    p_ids uuid[],
    p_kinds text[],
    p_call_ids text[],
    p_operator_ids text[],
    p_ats timestamptz[],
    p_data jsonb[]
) RETURNS integer LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan
    SET enable_seqscan = off
AS $$
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

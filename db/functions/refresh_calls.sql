-- A call's row in `calls`, derived from all its events.
--
-- A phone that answers and hangs up within 2 s (a pocket answer, a faulty headset) did not
-- answer the call: the app puts the caller back in line and records `offer_failed` with reason
-- `hung_up_at_once` after the `call_connected`. The `ghost` CTE finds those connections, and
-- the answer (connected_at, operator_id) leaves them out.
--
-- PL/pgSQL, not LANGUAGE sql: PostgreSQL parses, analyses and plans a LANGUAGE sql body on
-- every call (and the caller's PERFORM tried to inline it), which cost the writer's batches
-- nearly half of their database time. A PL/pgSQL statement is planned once per connection and,
-- with force_generic_plan, that one plan is kept. Sequential scans are off because every
-- statement here finds its rows by key (event, call or flag ids): an index is the right path at
-- any table size, and a plan made while the table was nearly empty is no trap.

CREATE OR REPLACE FUNCTION refresh_calls(p_call_ids text[]) RETURNS void LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan
    SET enable_seqscan = off
AS $$
BEGIN
    WITH ghost AS (
        -- The call_connected that each `hung_up_at_once` failure takes back: that operator's
        -- latest connection at or before it.
        SELECT DISTINCT ON (g.event_id) c.event_id
        FROM call_events g
        JOIN call_events c
          ON c.call_id = g.call_id
         AND c.kind = 'call_connected'
         AND c.operator_id IS NOT DISTINCT FROM g.operator_id
         AND c.at <= g.at
        WHERE g.call_id = ANY (p_call_ids)
          AND g.kind = 'offer_failed'
          AND g.data ->> 'reason' = 'hung_up_at_once'
        ORDER BY g.event_id, c.at DESC, c.event_id DESC
    ),
    agg AS (
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
            min(e.at) FILTER (WHERE e.kind = 'call_connected' AND gh.event_id IS NULL)
                AS connected_at,
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
                FILTER (WHERE e.kind = 'call_connected' AND gh.event_id IS NULL))[1]
                AS operator_id,
            (array_agg(e.data ->> 'hangup_by' ORDER BY e.at, e.event_id)
                FILTER (WHERE e.kind = 'call_ended'))[1] AS hangup_by,
            (array_agg(e.data ->> 'reason' ORDER BY e.at, e.event_id)
                FILTER (WHERE e.kind = 'call_ended'))[1] AS end_reason,
            count(*) FILTER (WHERE e.kind = 'call_offered') AS offers,
            count(*) AS events
        FROM call_events e
        LEFT JOIN ghost gh USING (event_id)
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
        -- The agencies added, and the partner centre that answered an overflowed call.
        SELECT e.call_id, array_agg(DISTINCT a.name ORDER BY a.name) AS agencies
        FROM call_events e
        CROSS JOIN LATERAL (SELECT CASE WHEN e.kind = 'overflow_outcome'
                                        THEN e.data ->> 'partner'
                                        ELSE e.data ->> 'agency' END AS name) a
        WHERE e.call_id = ANY (p_call_ids)
          AND (e.kind IN ('call_transferred', 'agency_added')
               OR (e.kind = 'overflow_outcome' AND e.data ->> 'outcome' = 'answered'))
          AND a.name IS NOT NULL
        GROUP BY e.call_id
    )
    INSERT INTO calls AS c (
        call_id, caller_number, caller_name, channel_id, arrived_at, classified_at, queued_at,
        offered_at, connected_at, abandoned_at, ended_at, category, priority, language,
        operator_id, outcome, wait_seconds, talk_seconds, hangup_by, end_reason, flags,
        agencies, offers, events, updated_at)
    SELECT
        a.call_id, a.caller_number, a.caller_name, a.channel_id, a.arrived_at, a.classified_at,
        a.queued_at, a.offered_at, a.connected_at, j.abandoned_at, a.ended_at, a.category,
        a.priority, a.language, a.operator_id,
        CASE WHEN a.connected_at IS NOT NULL THEN 'answered'
             WHEN j.abandoned_at IS NOT NULL THEN 'abandoned'
             WHEN 'fallback' = ANY (coalesce(f.flags, '{}')) THEN 'fallback'
             WHEN a.ended_at IS NOT NULL THEN 'unanswered'
             ELSE 'ongoing' END,
        round(extract(epoch FROM coalesce(a.connected_at, j.abandoned_at) - a.arrived_at), 3),
        round(extract(epoch FROM a.ended_at - a.connected_at), 3),
        a.hangup_by, a.end_reason, coalesce(f.flags, '{}'), coalesce(g.agencies, '{}'),
        a.offers, a.events, now()
    FROM agg a
    -- Nobody abandons a call that had already ended: an app that found the caller's channel
    -- gone after Asterisk itself was killed took it for a hang-up, seconds after the
    -- reconciliation closed the call as cut (pbx_restart).
    CROSS JOIN LATERAL (
        SELECT CASE WHEN a.ended_at IS NULL OR a.abandoned_at <= a.ended_at + interval '2 seconds'
                    THEN a.abandoned_at END AS abandoned_at
    ) j
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
        updated_at = EXCLUDED.updated_at;
END
$$;

-- The `callbacks` row of an abandoned call: its abandon and the latest callback updates.
-- PL/pgSQL with a generic plan and no sequential scans: see refresh_calls.sql.

CREATE OR REPLACE FUNCTION refresh_callbacks(p_call_ids text[]) RETURNS void LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan
    SET enable_seqscan = off
AS $$
BEGIN
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
        updated_at = EXCLUDED.updated_at;
END
$$;

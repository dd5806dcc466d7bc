-- A `caller_flags` row (a block or watch on a caller number): its caller_flag_set event and
-- the first caller_flag_cleared that names it. PL/pgSQL with a generic plan and no sequential
-- scans: see refresh_calls.sql.

CREATE OR REPLACE FUNCTION refresh_caller_flags(p_flag_ids uuid[]) RETURNS void LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan
    SET enable_seqscan = off
AS $$
BEGIN
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
        clear_reason = EXCLUDED.clear_reason;
END
$$;

-- Reports. Definitions (also in db/reports.py):
--  * a call belongs to the period and bucket of its arrival at Asterisk;
--  * wait = (connected or abandoned) - arrival: an IVR greeting is not an answer;
--  * "within T s" means wait <= T; a short abandon is an abandon with wait <= p_short_abandon
--    and is counted apart from the other abandons;
--  * service level(T) = answered within T / (answered + abandoned), short abandons excluded;
--  * time to ring = first offer - arrival, over the calls offered to an operator; time to
--    answer = the wait of the answered calls; their p50/p90/p99 are nearest-rank percentiles
--    (percentile_disc: the smallest time that many of the calls took no longer than);
--  * a call's route is how it got to the queue, from its flags, first match wins: fallback,
--    overflow, cannot_speak, no_input (unclassified, silent, invalid_input, or never classified;
--    `spoke` alone is a caller heard by talk detection, who may have chosen a digit), screened (blocked), digit (a valid menu choice);
--  * a call's verdict is its latest disposition (the call_verdicts view, 003_reports.sql).

-- A call's route from its flags and category (the rule above), for every report.
CREATE OR REPLACE FUNCTION report_route(p_flags text[], p_category text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN 'fallback' = ANY (p_flags) THEN 'fallback'
                WHEN 'overflow' = ANY (p_flags) THEN 'overflow'
                WHEN 'cannot_speak' = ANY (p_flags) THEN 'cannot_speak'
                WHEN p_flags && '{silent,invalid_input,unclassified}'::text[]
                    THEN 'no_input'
                WHEN 'blocked' = ANY (p_flags) THEN 'screened'
                -- Gone (or still) in the menu: the caller chose nothing.
                WHEN p_category IS NULL THEN 'no_input'
                ELSE 'digit' END
$$;

-- Rows: one 'total', one per category, one per bucket (hour/day/month in p_tz), one per route.
CREATE OR REPLACE FUNCTION report_calls(
    p_from timestamptz,
    p_to timestamptz,
    p_bucket text,
    p_tz text,
    p_thresholds numeric[],
    p_short_abandon numeric
) RETURNS TABLE (
    scope text,
    bucket timestamp,
    category text,
    route text,
    received bigint,
    answered bigint,
    abandoned bigint,
    abandoned_short bigint,
    unanswered bigint,
    fallback bigint,
    ongoing bigint,
    answered_within bigint[],
    asa_seconds numeric,
    longest_wait_seconds numeric,
    disposed bigint,
    prank bigint,
    silent bigint,
    rung bigint,
    to_ring_seconds numeric[],
    to_answer_seconds numeric[]
) LANGUAGE sql STABLE AS $$
    WITH facts AS (
        SELECT
            coalesce(c.category, 'unclassified') AS category,
            date_trunc(p_bucket, c.arrived_at AT TIME ZONE p_tz) AS bucket,
            report_route(c.flags, c.category) AS route,
            c.outcome,
            c.wait_seconds,
            c.outcome = 'abandoned' AND c.wait_seconds <= p_short_abandon AS short_abandon,
            round(extract(epoch FROM c.offered_at - c.arrived_at), 3) AS to_ring,
            v.verdict
        FROM calls c
        LEFT JOIN call_verdicts v USING (call_id)
        WHERE c.arrived_at >= p_from AND c.arrived_at < p_to
    ),
    grouped AS (
        SELECT
            GROUPING(category, bucket, route) AS g,
            category,
            bucket,
            route,
            count(*) AS received,
            count(*) FILTER (WHERE outcome = 'answered') AS answered,
            count(*) FILTER (WHERE outcome = 'abandoned' AND NOT short_abandon) AS abandoned,
            count(*) FILTER (WHERE short_abandon) AS abandoned_short,
            count(*) FILTER (WHERE outcome = 'unanswered') AS unanswered,
            count(*) FILTER (WHERE outcome = 'fallback') AS fallback,
            count(*) FILTER (WHERE outcome = 'ongoing') AS ongoing,
            array_agg(wait_seconds) FILTER (WHERE outcome = 'answered') AS answer_waits,
            round(avg(wait_seconds) FILTER (WHERE outcome = 'answered'), 3) AS asa_seconds,
            max(wait_seconds) FILTER (WHERE outcome IN ('answered', 'abandoned'))
                AS longest_wait_seconds,
            count(verdict) AS disposed,
            count(*) FILTER (WHERE verdict = 'prank') AS prank,
            count(*) FILTER (WHERE verdict = 'silent') AS silent,
            count(to_ring) AS rung,
            -- Ordered-set aggregates skip NULLs: calls never offered are not in to_ring.
            percentile_disc('{0.5,0.9,0.99}'::float8[]) WITHIN GROUP (ORDER BY to_ring)
                AS to_ring_seconds,
            percentile_disc('{0.5,0.9,0.99}'::float8[]) WITHIN GROUP (ORDER BY wait_seconds)
                FILTER (WHERE outcome = 'answered') AS to_answer_seconds
        FROM facts
        GROUP BY GROUPING SETS ((), (category), (bucket), (route))
    )
    SELECT
        CASE g WHEN 7 THEN 'total' WHEN 3 THEN 'category' WHEN 5 THEN 'bucket' ELSE 'route' END,
        CASE WHEN g = 5 THEN bucket END,
        CASE WHEN g = 3 THEN category END,
        CASE WHEN g = 6 THEN route END,
        received, answered, abandoned, abandoned_short, unanswered, fallback, ongoing,
        ARRAY(
            SELECT (SELECT count(*) FROM unnest(answer_waits) AS w WHERE w <= t.threshold)
            FROM unnest(p_thresholds) WITH ORDINALITY AS t(threshold, i)
            ORDER BY t.i),
        asa_seconds, longest_wait_seconds, disposed, prank, silent,
        rung, to_ring_seconds, to_answer_seconds
    FROM grouped
    ORDER BY CASE g WHEN 7 THEN 0 WHEN 3 THEN 1 WHEN 5 THEN 2 ELSE 3 END, category, bucket, route
$$;

-- Seconds each operator spent in each state (and pause reason) within [p_from, p_to); the
-- state still open at the end runs until min(p_to, p_now).
CREATE OR REPLACE FUNCTION report_operator_states(
    p_from timestamptz,
    p_to timestamptz,
    p_now timestamptz
) RETURNS TABLE (operator_id text, state text, reason text, seconds numeric)
LANGUAGE sql STABLE AS $$
    WITH bounds AS (
        -- Start from each operator's last change at or before p_from: its state at p_from.
        SELECT o.operator_id,
               coalesce((SELECT max(x.at) FROM operator_state_changes x
                         WHERE x.operator_id = o.operator_id AND x.at <= p_from), p_from)
                   AS since
        FROM operators o
    ),
    spans AS (
        SELECT s.operator_id, s.state, s.reason,
               greatest(s.at, p_from) AS starts,
               least(coalesce(lead(s.at) OVER w, least(p_to, p_now)), p_to) AS ends
        FROM bounds b
        JOIN operator_state_changes s
          ON s.operator_id = b.operator_id AND s.at >= b.since AND s.at < p_to
        WINDOW w AS (PARTITION BY s.operator_id ORDER BY s.at, s.change_id)
    )
    SELECT operator_id, state, CASE WHEN state = 'paused' THEN reason END,
           round(sum(extract(epoch FROM ends - starts)), 3)
    FROM spans
    WHERE ends > starts
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
$$;

-- Calls connected (transfers included), offers made and offers failed per operator within
-- [p_from, p_to).
CREATE OR REPLACE FUNCTION report_operator_calls(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (operator_id text, connected bigint, offers bigint, offers_failed bigint)
LANGUAGE sql STABLE AS $$
    SELECT e.operator_id,
           count(*) FILTER (WHERE e.kind = 'call_connected'),
           count(*) FILTER (WHERE e.kind = 'call_offered'),
           count(*) FILTER (WHERE e.kind = 'offer_failed')
    FROM call_events e
    WHERE e.at >= p_from AND e.at < p_to
      AND e.operator_id IS NOT NULL
      AND e.kind IN ('call_connected', 'call_offered', 'offer_failed')
    GROUP BY e.operator_id
    ORDER BY e.operator_id
$$;

-- reports: the calls answered within their own category's answer target (p_targets[i] for
-- p_categories[i], p_default for any other and for calls never classified), in the rows of
-- report_calls() (same grouping; the service level's denominator is report_calls()').
CREATE OR REPLACE FUNCTION report_within_targets(
    p_from timestamptz,
    p_to timestamptz,
    p_bucket text,
    p_tz text,
    p_categories text[],
    p_targets numeric[],
    p_default numeric
) RETURNS TABLE (scope text, bucket timestamp, category text, route text, answered_within bigint)
LANGUAGE sql STABLE AS $$
    WITH facts AS (
        SELECT
            coalesce(c.category, 'unclassified') AS category,
            date_trunc(p_bucket, c.arrived_at AT TIME ZONE p_tz) AS bucket,
            report_route(c.flags, c.category) AS route,
            c.outcome = 'answered' AND c.wait_seconds <= coalesce(
                p_targets[array_position(p_categories, c.category)], p_default) AS within
        FROM calls c
        WHERE c.arrived_at >= p_from AND c.arrived_at < p_to
    ),
    grouped AS (
        SELECT GROUPING(category, bucket, route) AS g, category, bucket, route,
               count(*) FILTER (WHERE within) AS answered_within
        FROM facts
        GROUP BY GROUPING SETS ((), (category), (bucket), (route))
    )
    SELECT
        CASE g WHEN 7 THEN 'total' WHEN 3 THEN 'category' WHEN 5 THEN 'bucket' ELSE 'route' END,
        CASE WHEN g = 5 THEN bucket END,
        CASE WHEN g = 3 THEN category END,
        CASE WHEN g = 6 THEN route END,
        answered_within
    FROM grouped
$$;

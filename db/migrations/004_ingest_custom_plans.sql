-- ingest_events() runs its statements through PL/pgSQL's plan cache. After a few calls the
-- cache settles on a generic plan, made while call_events was nearly empty: sequential scans
-- that slow every batch as the table grows (seen in bench/bench_db.py: commits of 400 events
-- going from 10 to 200+ ms within a minute). Plan each call for the batch at hand instead.
ALTER FUNCTION ingest_events(uuid[], text[], text[], text[], timestamptz[], jsonb[])
    SET plan_cache_mode = force_custom_plan;

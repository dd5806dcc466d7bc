-- report_calls() gains rows per route (how the caller got to the queue) and the percentiles of
-- the time to a human. Its result columns change, which CREATE OR REPLACE cannot do: the old
-- one is dropped here and db/functions/reports.sql, applied after the migrations, creates the
-- new one.
DROP FUNCTION report_calls(timestamptz, timestamptz, text, text, numeric[], numeric);

-- call_events, console_audit and recording_holds are append-only: their triggers refuse
-- UPDATE, DELETE and TRUNCATE (the triggers themselves are in migrations 001, 010 and 014).

CREATE OR REPLACE FUNCTION call_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'call_events is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE OR REPLACE FUNCTION console_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'console_audit is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE OR REPLACE FUNCTION recording_holds_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'recording_holds is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

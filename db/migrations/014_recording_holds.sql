-- Legal holds on calls' recordings (stack/retention.py): the retention job never deletes a held
-- recording. Append-only: a hold is released by a row of its own, so who held and released
-- what, when and why stays on record.
CREATE TABLE recording_holds (
    hold_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id  text NOT NULL,
    held     boolean NOT NULL,  -- true: held; false: released
    by_user  text NOT NULL,
    reason   text NOT NULL,
    at       timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX recording_holds_call ON recording_holds (call_id, hold_id);

CREATE FUNCTION recording_holds_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'recording_holds is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER recording_holds_append_only
    BEFORE UPDATE OR DELETE ON recording_holds
    FOR EACH ROW EXECUTE FUNCTION recording_holds_refuse_change();
CREATE TRIGGER recording_holds_no_truncate
    BEFORE TRUNCATE ON recording_holds
    FOR EACH STATEMENT EXECUTE FUNCTION recording_holds_refuse_change();

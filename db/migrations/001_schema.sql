-- Core tables. call_events is the journal: every fact, append-only, one row per event id.
-- Every other table is derived from it by ingest_events() (002), so replays and out-of-order
-- arrivals give the same rows. No CHECK constraints on derived columns: a value the code did
-- not foresee must not cost the record.

CREATE TABLE call_events (
    event_id     uuid PRIMARY KEY,
    seq          bigint GENERATED ALWAYS AS IDENTITY,
    kind         text NOT NULL,
    call_id      text,
    operator_id  text,
    at           timestamptz(3) NOT NULL,
    data         jsonb NOT NULL DEFAULT '{}'::jsonb,
    recorded_at  timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX call_events_call ON call_events (call_id, at) WHERE call_id IS NOT NULL;
CREATE INDEX call_events_operator ON call_events (operator_id, at) WHERE operator_id IS NOT NULL;
CREATE INDEX call_events_at ON call_events (at);
CREATE INDEX call_events_flag_cleared ON call_events ((data ->> 'flag_id'))
    WHERE kind = 'caller_flag_cleared';

CREATE FUNCTION call_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'call_events is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER call_events_append_only
    BEFORE UPDATE OR DELETE ON call_events
    FOR EACH ROW EXECUTE FUNCTION call_events_refuse_change();
CREATE TRIGGER call_events_no_truncate
    BEFORE TRUNCATE ON call_events
    FOR EACH STATEMENT EXECUTE FUNCTION call_events_refuse_change();

CREATE TABLE calls (
    call_id        text PRIMARY KEY,
    caller_number  text,            -- exactly as received from the network
    caller_name    text,
    channel_id     text,
    arrived_at     timestamptz(3),  -- arrival at Asterisk: the answer clock starts here
    classified_at  timestamptz(3),
    queued_at      timestamptz(3),
    offered_at     timestamptz(3),
    connected_at   timestamptz(3),  -- first operator connected: the answer
    abandoned_at   timestamptz(3),
    ended_at       timestamptz(3),
    category       text,
    priority       integer,
    language       text,
    operator_id    text,            -- the operator who answered
    outcome        text NOT NULL,   -- ongoing / answered / abandoned / fallback / unanswered
    wait_seconds   numeric(12, 3),  -- (connected_at or abandoned_at) - arrived_at
    talk_seconds   numeric(12, 3),  -- ended_at - connected_at
    hangup_by      text,
    end_reason     text,
    flags          text[] NOT NULL DEFAULT '{}',
    agencies       text[] NOT NULL DEFAULT '{}',
    offers         integer NOT NULL DEFAULT 0,
    events         integer NOT NULL DEFAULT 0,
    updated_at     timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX calls_arrived_at ON calls (arrived_at);
CREATE INDEX calls_caller_number ON calls (caller_number);
CREATE INDEX calls_operator ON calls (operator_id, arrived_at);

CREATE TABLE operators (
    operator_id    text PRIMARY KEY,
    name           text,
    state          text,
    state_reason   text,
    state_at       timestamptz(3),
    first_seen_at  timestamptz(3) NOT NULL
);

CREATE TABLE operator_state_changes (
    change_id    uuid PRIMARY KEY,  -- the event id
    operator_id  text NOT NULL,
    state        text NOT NULL,
    reason       text,
    at           timestamptz(3) NOT NULL
);
CREATE INDEX operator_state_changes_operator ON operator_state_changes (operator_id, at);

CREATE TABLE dispositions (
    disposition_id  uuid PRIMARY KEY,  -- the event id; corrections are new rows, latest wins
    call_id         text,
    operator_id     text,
    verdict         text,
    notes           text,
    location        jsonb,
    at              timestamptz(3) NOT NULL
);
CREATE INDEX dispositions_call ON dispositions (call_id, at);

CREATE TABLE callbacks (
    call_id       text PRIMARY KEY,
    abandoned_at  timestamptz(3),
    position      integer,
    status        text NOT NULL DEFAULT 'pending',
    owner         text,
    outcome       text,
    notes         text,
    updated_at    timestamptz(3)
);
CREATE INDEX callbacks_status ON callbacks (status, abandoned_at);

CREATE TABLE caller_flags (
    flag_id       uuid PRIMARY KEY,  -- the caller_flag_set event id
    number        text NOT NULL,
    flag          text NOT NULL,
    reason        text,
    set_by        text,
    set_at        timestamptz(3) NOT NULL,
    expires_at    timestamptz(3),
    cleared_at    timestamptz(3),
    cleared_by    text,
    clear_reason  text
);
CREATE INDEX caller_flags_number ON caller_flags (number);

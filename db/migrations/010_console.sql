-- The web console (supervisor/): its users, their sessions, and the audit of what they did
-- with citizens' data (recordings played, exports, blocks, logins).

CREATE TABLE console_users (
    user_id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username             text NOT NULL,
    display_name         text,
    role                 text NOT NULL CHECK (role IN ('operator', 'supervisor', 'admin')),
    operator_id          text,            -- an operator's id in siaga.toml
    phone                text,            -- dial string rung for listen / whisper / barge
    password_hash        text NOT NULL,   -- argon2id
    dev_default          boolean NOT NULL DEFAULT false,  -- still the development password
    disabled_at          timestamptz(3),
    created_at           timestamptz(3) NOT NULL DEFAULT now(),
    password_changed_at  timestamptz(3) NOT NULL DEFAULT now(),
    CHECK (role <> 'operator' OR operator_id IS NOT NULL)
);
CREATE UNIQUE INDEX console_users_username ON console_users (lower(username));

-- The cookie holds a random token; only its SHA-256 is stored here.
CREATE TABLE console_sessions (
    token_digest  bytea PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES console_users ON DELETE CASCADE,
    csrf_token    text NOT NULL,
    created_at    timestamptz(3) NOT NULL DEFAULT now(),
    last_seen_at  timestamptz(3) NOT NULL DEFAULT now(),
    expires_at    timestamptz(3) NOT NULL,
    client        text
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- Append-only, like call_events: an audit that can be edited audits nothing.
CREATE TABLE console_audit (
    audit_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz(3) NOT NULL DEFAULT now(),
    username  text,
    role      text,
    action    text NOT NULL,
    target    text,
    client    text,
    detail    jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX console_audit_at ON console_audit (at);
CREATE INDEX console_audit_target ON console_audit (target, at);

CREATE FUNCTION console_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'console_audit is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER console_audit_append_only
    BEFORE UPDATE OR DELETE ON console_audit
    FOR EACH ROW EXECUTE FUNCTION console_audit_refuse_change();
CREATE TRIGGER console_audit_no_truncate
    BEFORE TRUNCATE ON console_audit
    FOR EACH STATEMENT EXECUTE FUNCTION console_audit_refuse_change();

-- Console sign-in: sessions, the temporary credentials bound to them, and
-- failed sign-in counts for lockout. Console session tokens are stored only
-- as SHA-256 hashes, so a copy of the database does not hand out sessions.
-- Temporary credentials keep their session token, like their secret: the
-- server must hand both to the environments it forwards them to.

CREATE TABLE console_sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (user_id),
    csrf_token   TEXT NOT NULL,
    mfa_used     BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX console_sessions_by_user ON console_sessions (user_id);

CREATE TABLE temporary_credentials (
    access_key_id       TEXT PRIMARY KEY,
    secret              TEXT NOT NULL,
    session_token       TEXT NOT NULL,
    -- Whose they are: a user (console sessions, GetSessionToken) or a role
    -- session (AssumeRole).
    user_id             TEXT REFERENCES users (user_id),
    role_id             TEXT,
    role_session_name   TEXT,
    -- The console session they belong to, if any: revoked with it.
    console_session     TEXT,
    mfa_authenticated   BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL,
    revoked             BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX temporary_credentials_by_session ON temporary_credentials (console_session);

CREATE TABLE signin_failures (
    user_id       TEXT PRIMARY KEY REFERENCES users (user_id),
    failures      BIGINT NOT NULL,
    locked_until  BIGINT NOT NULL
);

-- Virtual MFA devices (RFC 6238 TOTP). The last accepted time step is kept
-- so a code cannot be used twice.
CREATE TABLE mfa_devices (
    serial_number  TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts (account_id),
    user_id        TEXT REFERENCES users (user_id),
    secret_base32  TEXT NOT NULL,
    enabled_at     BIGINT,
    last_step      BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);
CREATE INDEX mfa_devices_by_user ON mfa_devices (user_id);

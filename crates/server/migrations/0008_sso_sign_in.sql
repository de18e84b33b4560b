-- Signing in to IAM Identity Center: portal sessions, the OAuth clients
-- tools register (SSO-OIDC), their device authorizations, and the access
-- and refresh tokens issued to them. Secrets, codes and tokens are stored
-- only as SHA-256 hashes, so a copy of the database hands nothing out.

CREATE TABLE sso_portal_sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES sso_users (user_id),
    csrf_token  TEXT NOT NULL,
    mfa_used    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sso_portal_sessions_by_user ON sso_portal_sessions (user_id);

-- Failed portal sign-ins, for lockout (as signin_failures for IAM users).
CREATE TABLE sso_signin_failures (
    user_id       TEXT PRIMARY KEY REFERENCES sso_users (user_id),
    failures      BIGINT NOT NULL,
    locked_until  BIGINT NOT NULL
);

-- One-time links with which a new identity-store user sets a password
-- (what AWS sends by email).
CREATE TABLE sso_invitations (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES sso_users (user_id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used        BIGINT NOT NULL DEFAULT 0
);

-- Sign-ins through the external OpenID Connect identity provider that are
-- waiting for its answer: the state (hashed), the PKCE verifier and the
-- nonce, each used once.
CREATE TABLE sso_idp_logins (
    state_hash     TEXT PRIMARY KEY,
    pkce_verifier  TEXT NOT NULL,
    nonce          TEXT NOT NULL,
    next_path      TEXT NOT NULL,
    expires_at     BIGINT NOT NULL
);

CREATE TABLE sso_oidc_clients (
    client_id           TEXT PRIMARY KEY,
    client_secret_hash  TEXT NOT NULL,
    client_name         TEXT NOT NULL,
    client_type         TEXT NOT NULL,
    -- Space-separated.
    scopes              TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL
);

CREATE TABLE sso_device_authorizations (
    device_code_hash  TEXT PRIMARY KEY,
    -- What the user types or follows in the portal: XXXX-XXXX.
    user_code         TEXT NOT NULL UNIQUE,
    client_id         TEXT NOT NULL REFERENCES sso_oidc_clients (client_id),
    -- PENDING, APPROVED, DENIED or REDEEMED.
    status            TEXT NOT NULL,
    -- Who approved or denied it.
    user_id           TEXT REFERENCES sso_users (user_id),
    mfa_used          BIGINT NOT NULL DEFAULT 0,
    interval_secs     BIGINT NOT NULL,
    -- The last CreateToken poll, for SlowDownException.
    last_poll_at      BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL
);

CREATE TABLE sso_tokens (
    token_hash  TEXT PRIMARY KEY,
    -- access or refresh.
    kind        TEXT NOT NULL,
    client_id   TEXT NOT NULL REFERENCES sso_oidc_clients (client_id),
    user_id     TEXT NOT NULL REFERENCES sso_users (user_id),
    mfa_used    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sso_tokens_by_user ON sso_tokens (user_id);

-- Console sessions as a role: an identity-store user's "Management
-- console" from the portal. Their temporary credentials are rows of
-- temporary_credentials naming the session, as for console_sessions.
CREATE TABLE federated_console_sessions (
    token_hash         TEXT PRIMARY KEY,
    -- No foreign key: the role goes when its last assignment does, and
    -- the session with it.
    role_id            TEXT NOT NULL,
    role_session_name  TEXT NOT NULL,
    sso_user_id        TEXT NOT NULL REFERENCES sso_users (user_id),
    csrf_token         TEXT NOT NULL,
    mfa_used           BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    revoked            BIGINT NOT NULL DEFAULT 0
);

-- Role credentials handed to an identity-store user (GetRoleCredentials, the
-- portal's console and command-line access) remember whose they are, so
-- disabling the user or removing the assignment revokes them.
ALTER TABLE temporary_credentials ADD COLUMN sso_user_id TEXT;
CREATE INDEX temporary_credentials_by_sso_user ON temporary_credentials (sso_user_id);

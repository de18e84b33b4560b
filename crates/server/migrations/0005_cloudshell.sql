-- CloudShell: environments, their sessions (one per console tab), the
-- one-time tokens that open a session's data channel, metered usage and the
-- homes the retention janitor watches.

-- One row per environment: the public one of a (principal, region), or a
-- named VPC environment. `status` is the API's state machine (CREATING,
-- RUNNING, SUSPENDING, SUSPENDED, RESUMING, DELETING, DELETED); the container
-- behind it is the runtime's business.
CREATE TABLE cloudshell_environments (
    environment_id    TEXT PRIMARY KEY,
    account_id        TEXT NOT NULL REFERENCES accounts (account_id),
    principal_arn     TEXT NOT NULL,
    region            TEXT NOT NULL,
    -- '' for the public environment, the EnvironmentName for a VPC one.
    name              TEXT NOT NULL,
    vpc_config        TEXT,
    status            TEXT NOT NULL,
    status_reason     TEXT,
    layout            TEXT,
    -- When the last session ended (ms), for the suspend grace period.
    idle_since        BIGINT,
    -- Last SendHeartBeat (ms): pointer activity in the console.
    heartbeat_at      BIGINT,
    -- When the environment last started running (ms), for usage metering.
    running_since     BIGINT,
    -- The credentials forwarded into the environment (PutCredentials): the
    -- console session they came from (its token hash), or NULL for
    -- credentials issued to a programmatic caller; their access key id and
    -- expiry, for refresh and withdrawal.
    credentials_console_session  TEXT,
    credentials_access_key_id    TEXT,
    credentials_expires_at       BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
-- One environment per principal, region and name; a deleted environment's
-- row is removed (its history is in the audit trail).
CREATE UNIQUE INDEX cloudshell_environments_key
    ON cloudshell_environments (account_id, principal_arn, region, name);

-- Shells. `tab_id` names the console tab: the same tab reattaches to the
-- same shell while it lives.
CREATE TABLE cloudshell_sessions (
    session_id        TEXT PRIMARY KEY,
    environment_id    TEXT NOT NULL REFERENCES cloudshell_environments (environment_id),
    tab_id            TEXT NOT NULL,
    shell             TEXT NOT NULL,
    principal_arn     TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    ended_at          BIGINT,
    end_reason        TEXT
);
CREATE INDEX cloudshell_sessions_by_environment ON cloudshell_sessions (environment_id, ended_at);

-- One-time data-channel tokens, stored as SHA-256 hashes.
CREATE TABLE cloudshell_stream_tokens (
    token_hash        TEXT PRIMARY KEY,
    session_id        TEXT NOT NULL REFERENCES cloudshell_sessions (session_id),
    principal_arn     TEXT NOT NULL,
    -- 'fresh' (createSession) or 'resume' (resumeSession).
    attach_mode       TEXT NOT NULL,
    expires_at        BIGINT NOT NULL,
    used              BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX cloudshell_stream_tokens_by_session ON cloudshell_stream_tokens (session_id);

-- Environment running time per account, region and calendar month (UTC,
-- 'YYYY-MM'), in seconds.
CREATE TABLE cloudshell_usage (
    account_id        TEXT NOT NULL,
    region            TEXT NOT NULL,
    month             TEXT NOT NULL,
    seconds           BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, month)
);

-- Persistent homes, for retention: deleted when unused for longer than the
-- retention period.
CREATE TABLE cloudshell_homes (
    account_id        TEXT NOT NULL,
    principal_arn     TEXT NOT NULL,
    region            TEXT NOT NULL,
    last_used_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, principal_arn, region)
);

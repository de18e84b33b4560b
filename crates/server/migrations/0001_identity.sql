-- Accounts, users and their long-term access keys. Portable SQL: the same
-- file runs on SQLite and PostgreSQL. Times are milliseconds since the epoch;
-- flags are 0/1 integers.

CREATE TABLE accounts (
    account_id   TEXT PRIMARY KEY,
    alias        TEXT UNIQUE,
    created_at   BIGINT NOT NULL
);

CREATE TABLE users (
    user_id                  TEXT PRIMARY KEY,
    account_id               TEXT NOT NULL REFERENCES accounts (account_id),
    name                     TEXT NOT NULL,
    -- IAM user names are unique regardless of case.
    name_key                 TEXT NOT NULL,
    path                     TEXT NOT NULL,
    created_at               BIGINT NOT NULL,
    password_hash            TEXT,
    password_reset_required  BIGINT NOT NULL DEFAULT 0,
    UNIQUE (account_id, name_key)
);

CREATE TABLE access_keys (
    access_key_id  TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (user_id),
    secret         TEXT NOT NULL,
    active         BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX access_keys_by_user ON access_keys (user_id);

-- Managed policies attached to users, by ARN (built-in or customer managed).
CREATE TABLE user_policy_attachments (
    user_id     TEXT NOT NULL REFERENCES users (user_id),
    policy_arn  TEXT NOT NULL,
    PRIMARY KEY (user_id, policy_arn)
);

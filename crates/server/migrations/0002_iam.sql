-- IAM: groups, roles, customer managed policies and their versions, inline
-- policies, login profiles. Portable SQL: the same file runs on SQLite and
-- PostgreSQL. Times are milliseconds since the epoch; flags are 0/1 integers.
-- Names are unique regardless of case, as in IAM, through a lower-cased key.

-- When the login profile (the password in users.password_hash) was created.
ALTER TABLE users ADD COLUMN password_created_at BIGINT;

CREATE TABLE iam_groups (
    group_id    TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (account_id),
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL,
    path        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (account_id, name_key)
);

CREATE TABLE group_members (
    group_id  TEXT NOT NULL REFERENCES iam_groups (group_id),
    user_id   TEXT NOT NULL REFERENCES users (user_id),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_by_user ON group_members (user_id);

CREATE TABLE iam_roles (
    role_id               TEXT PRIMARY KEY,
    account_id            TEXT NOT NULL REFERENCES accounts (account_id),
    name                  TEXT NOT NULL,
    name_key              TEXT NOT NULL,
    path                  TEXT NOT NULL,
    description           TEXT,
    max_session_duration  BIGINT NOT NULL,
    trust_policy          TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    UNIQUE (account_id, name_key)
);

-- Managed policies attached to groups and roles, by ARN (built-in or
-- customer managed); users have theirs in user_policy_attachments.
CREATE TABLE group_policy_attachments (
    group_id    TEXT NOT NULL REFERENCES iam_groups (group_id),
    policy_arn  TEXT NOT NULL,
    PRIMARY KEY (group_id, policy_arn)
);

CREATE TABLE role_policy_attachments (
    role_id     TEXT NOT NULL REFERENCES iam_roles (role_id),
    policy_arn  TEXT NOT NULL,
    PRIMARY KEY (role_id, policy_arn)
);

-- Inline policies, embedded in one user, group or role.
CREATE TABLE user_inline_policies (
    user_id   TEXT NOT NULL REFERENCES users (user_id),
    name      TEXT NOT NULL,
    document  TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
);

CREATE TABLE group_inline_policies (
    group_id  TEXT NOT NULL REFERENCES iam_groups (group_id),
    name      TEXT NOT NULL,
    document  TEXT NOT NULL,
    PRIMARY KEY (group_id, name)
);

CREATE TABLE role_inline_policies (
    role_id   TEXT NOT NULL REFERENCES iam_roles (role_id),
    name      TEXT NOT NULL,
    document  TEXT NOT NULL,
    PRIMARY KEY (role_id, name)
);

-- Customer managed policies; the built-in ones live in the binary.
CREATE TABLE managed_policies (
    policy_id        TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts (account_id),
    arn              TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    name_key         TEXT NOT NULL,
    path             TEXT NOT NULL,
    description      TEXT,
    default_version  TEXT NOT NULL,
    -- The number of the next version (versions are never renumbered).
    next_version     BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (account_id, name_key)
);

CREATE TABLE policy_versions (
    policy_id   TEXT NOT NULL REFERENCES managed_policies (policy_id),
    version_id  TEXT NOT NULL,
    document    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (policy_id, version_id)
);

-- IAM Identity Center (DESIGN §3): an organization of accounts, one
-- Identity Center instance per organization with its identity store (users,
-- groups, memberships), permission sets, account assignments, and the roles
-- the assignments materialize in each account. Portable SQL, as in 0001.

CREATE TABLE organizations (
    -- o-<10 lowercase alphanumerics>.
    organization_id     TEXT PRIMARY KEY,
    management_account  TEXT NOT NULL UNIQUE REFERENCES accounts (account_id),
    created_at          BIGINT NOT NULL
);

-- Every account of an organization, the management account included.
CREATE TABLE organization_accounts (
    account_id       TEXT PRIMARY KEY REFERENCES accounts (account_id),
    organization_id  TEXT NOT NULL REFERENCES organizations (organization_id),
    name             TEXT NOT NULL,
    email            TEXT NOT NULL,
    joined_at        BIGINT NOT NULL
);
CREATE INDEX organization_accounts_by_org ON organization_accounts (organization_id);

-- Service control policies: a customer policy document, attached to
-- accounts of the organization (the root is the organization itself).
CREATE TABLE organization_policies (
    -- p-<8 or more lowercase alphanumerics>.
    policy_id        TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (organization_id),
    name             TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    document         TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);
-- policy_id names a row of organization_policies, or the AWS managed
-- p-FullAWSAccess, which every organization has and no row holds (hence no
-- foreign key; deleting a policy deletes its targets in the same
-- transaction).
CREATE TABLE organization_policy_targets (
    policy_id  TEXT NOT NULL,
    -- An account ID, or the organization's root ID (r-…) for all accounts.
    target_id  TEXT NOT NULL,
    PRIMARY KEY (policy_id, target_id)
);
CREATE INDEX organization_policy_targets_by_target ON organization_policy_targets (target_id);

CREATE TABLE sso_instances (
    -- arn:aws:sso:::instance/ssoins-<16 hex>.
    instance_arn       TEXT PRIMARY KEY,
    -- d-<10 lowercase alphanumerics>.
    identity_store_id  TEXT NOT NULL UNIQUE,
    organization_id    TEXT NOT NULL UNIQUE REFERENCES organizations (organization_id),
    created_at         BIGINT NOT NULL
);

CREATE TABLE sso_users (
    -- A UUID, as the identity store's UserId.
    user_id            TEXT PRIMARY KEY,
    identity_store_id  TEXT NOT NULL REFERENCES sso_instances (identity_store_id),
    user_name          TEXT NOT NULL,
    -- User names are unique regardless of case.
    user_name_key      TEXT NOT NULL,
    display_name       TEXT NOT NULL,
    email              TEXT,
    -- Argon2id PHC string; NULL until the user sets a password (or for
    -- users who only sign in through an external identity provider).
    password_hash      TEXT,
    -- issuer + ' ' + subject, for users federated from an external OIDC
    -- identity provider.
    external_id        TEXT UNIQUE,
    disabled           BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    UNIQUE (identity_store_id, user_name_key)
);

CREATE TABLE sso_groups (
    group_id           TEXT PRIMARY KEY,
    identity_store_id  TEXT NOT NULL REFERENCES sso_instances (identity_store_id),
    display_name       TEXT NOT NULL,
    display_name_key   TEXT NOT NULL,
    description        TEXT,
    external_id        TEXT UNIQUE,
    created_at         BIGINT NOT NULL,
    UNIQUE (identity_store_id, display_name_key)
);

CREATE TABLE sso_group_memberships (
    membership_id  TEXT PRIMARY KEY,
    group_id       TEXT NOT NULL REFERENCES sso_groups (group_id),
    user_id        TEXT NOT NULL REFERENCES sso_users (user_id),
    UNIQUE (group_id, user_id)
);
CREATE INDEX sso_group_memberships_by_user ON sso_group_memberships (user_id);

-- TOTP devices of identity-store users; the last accepted time step is kept
-- so a code cannot be used twice.
CREATE TABLE sso_mfa_devices (
    device_id      TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES sso_users (user_id),
    secret_base32  TEXT NOT NULL,
    enabled_at     BIGINT,
    last_step      BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);
CREATE INDEX sso_mfa_devices_by_user ON sso_mfa_devices (user_id);

CREATE TABLE sso_permission_sets (
    -- arn:aws:sso:::permissionSet/ssoins-<16 hex>/ps-<16 hex>.
    permission_set_arn     TEXT PRIMARY KEY,
    instance_arn           TEXT NOT NULL REFERENCES sso_instances (instance_arn),
    name                   TEXT NOT NULL,
    name_key               TEXT NOT NULL,
    description            TEXT,
    -- Seconds, 3600 to 43200.
    session_duration_secs  BIGINT NOT NULL,
    relay_state            TEXT,
    inline_policy          TEXT,
    created_at             BIGINT NOT NULL,
    UNIQUE (instance_arn, name_key)
);

CREATE TABLE sso_permission_set_policies (
    permission_set_arn  TEXT NOT NULL REFERENCES sso_permission_sets (permission_set_arn),
    policy_arn          TEXT NOT NULL,
    PRIMARY KEY (permission_set_arn, policy_arn)
);

CREATE TABLE sso_account_assignments (
    account_id          TEXT NOT NULL REFERENCES accounts (account_id),
    permission_set_arn  TEXT NOT NULL REFERENCES sso_permission_sets (permission_set_arn),
    -- USER or GROUP.
    principal_type      TEXT NOT NULL,
    principal_id        TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    PRIMARY KEY (account_id, permission_set_arn, principal_type, principal_id)
);
CREATE INDEX sso_account_assignments_by_principal ON sso_account_assignments (principal_id);

-- The role `AWSReservedSSO_<PermissionSet>_<hash>` (path
-- /aws-reserved/sso.amazonaws.com/) a permission set materializes in an
-- account while it has assignments there.
CREATE TABLE sso_provisioned_roles (
    account_id          TEXT NOT NULL REFERENCES accounts (account_id),
    permission_set_arn  TEXT NOT NULL REFERENCES sso_permission_sets (permission_set_arn),
    role_id             TEXT NOT NULL REFERENCES iam_roles (role_id),
    PRIMARY KEY (account_id, permission_set_arn)
);

-- The status of an asynchronous-looking request (CreateAccountAssignment,
-- DeleteAccountAssignment, ProvisionPermissionSet): Seashell does the work
-- at once, and Describe…Status reads back what was answered.
CREATE TABLE sso_requests (
    -- A UUID.
    request_id    TEXT PRIMARY KEY,
    instance_arn  TEXT NOT NULL REFERENCES sso_instances (instance_arn),
    -- ASSIGNMENT_CREATION, ASSIGNMENT_DELETION or PROVISIONING.
    kind          TEXT NOT NULL,
    -- The status object as the API returns it (JSON).
    status        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

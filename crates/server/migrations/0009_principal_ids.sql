-- Environments and homes belong to a principal's stable ID, not its ARN:
-- the IAM user ID (`AIDA…`), or for a role session the role ID and the
-- session name (`AROA…:session`, as `aws:userid`). A user deleted and
-- created again under the same name has a new ID, so the new user never
-- sees the old user's environments or home; two roles whose sessions share
-- a session name have different role IDs.
--
-- `principal_id` is the owner; `home_principal` is the string the home
-- volume's file name is derived from (`HomeKey`). New rows use the stable ID
-- for both. Rows from before this migration keep their ARN as
-- `home_principal`, so the home file of a principal who still exists is
-- found again under the same name; their `principal_id` is looked up from
-- the ARN (the user with that ARN, or the role named in an assumed-role
-- ARN). Where no such user or role exists any more, `principal_id` keeps
-- the ARN: no caller's ID is ever an ARN, so those rows are reachable by no
-- one (a user re-created later gets a fresh home) and the retention janitor
-- deletes them in time.

ALTER TABLE cloudshell_environments ADD COLUMN principal_id TEXT NOT NULL DEFAULT '';
ALTER TABLE cloudshell_environments ADD COLUMN home_principal TEXT NOT NULL DEFAULT '';

UPDATE cloudshell_environments SET
    home_principal = principal_arn,
    principal_id = COALESCE(
        (SELECT u.user_id FROM users u
          WHERE u.account_id = cloudshell_environments.account_id
            AND 'arn:aws:iam::' || u.account_id || ':user' || u.path || u.name
                = cloudshell_environments.principal_arn),
        (SELECT r.role_id || ':' || substr(cloudshell_environments.principal_arn,
                    length('arn:aws:sts::' || r.account_id || ':assumed-role/' || r.name || '/') + 1)
           FROM iam_roles r
          WHERE r.account_id = cloudshell_environments.account_id
            AND substr(cloudshell_environments.principal_arn, 1,
                    length('arn:aws:sts::' || r.account_id || ':assumed-role/' || r.name || '/'))
                = 'arn:aws:sts::' || r.account_id || ':assumed-role/' || r.name || '/'),
        principal_arn);

DROP INDEX cloudshell_environments_key;
CREATE UNIQUE INDEX cloudshell_environments_key
    ON cloudshell_environments (account_id, principal_id, region, name);

-- Homes, keyed the same way; `principal_arn` is kept for the retention
-- janitor's audit record (the ARN the home was last used as).
CREATE TABLE cloudshell_homes_by_id (
    account_id        TEXT NOT NULL,
    principal_id      TEXT NOT NULL,
    home_principal    TEXT NOT NULL,
    principal_arn     TEXT NOT NULL,
    region            TEXT NOT NULL,
    last_used_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, principal_id, region)
);

INSERT INTO cloudshell_homes_by_id
    (account_id, principal_id, home_principal, principal_arn, region, last_used_at)
SELECT h.account_id,
       COALESCE(
           (SELECT u.user_id FROM users u
             WHERE u.account_id = h.account_id
               AND 'arn:aws:iam::' || u.account_id || ':user' || u.path || u.name = h.principal_arn),
           (SELECT r.role_id || ':' || substr(h.principal_arn,
                       length('arn:aws:sts::' || r.account_id || ':assumed-role/' || r.name || '/') + 1)
              FROM iam_roles r
             WHERE r.account_id = h.account_id
               AND substr(h.principal_arn, 1,
                       length('arn:aws:sts::' || r.account_id || ':assumed-role/' || r.name || '/'))
                   = 'arn:aws:sts::' || r.account_id || ':assumed-role/' || r.name || '/'),
           h.principal_arn),
       h.principal_arn, h.principal_arn, h.region, h.last_used_at
  FROM cloudshell_homes h;

DROP TABLE cloudshell_homes;
ALTER TABLE cloudshell_homes_by_id RENAME TO cloudshell_homes;

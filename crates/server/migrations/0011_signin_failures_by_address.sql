-- Failed sign-ins are counted per (user, client address) (docs/security.md
-- §5.1): failures from one address lock out that address's attempts for
-- the user, not the user everywhere, so knowing a user name no longer lets
-- anyone keep that user locked out. `source` is the client address (IPv4,
-- or an IPv6 /64 prefix, as the per-address rate limit counts them), or
-- '*' for the per-user backstop that counts failures from every address
-- (with a much higher threshold; its lock spares addresses the user has
-- signed in from, `known`). Existing per-user counts become the backstop's.

CREATE TABLE signin_failures_by_source (
    user_id       TEXT NOT NULL REFERENCES users (user_id),
    source        TEXT NOT NULL,
    failures      BIGINT NOT NULL,
    locked_until  BIGINT NOT NULL,
    -- 1 once the user signed in from this address.
    known         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, source)
);
INSERT INTO signin_failures_by_source (user_id, source, failures, locked_until, known)
SELECT user_id, '*', failures, locked_until, 0 FROM signin_failures;
DROP TABLE signin_failures;
ALTER TABLE signin_failures_by_source RENAME TO signin_failures;

CREATE TABLE sso_signin_failures_by_source (
    user_id       TEXT NOT NULL REFERENCES sso_users (user_id),
    source        TEXT NOT NULL,
    failures      BIGINT NOT NULL,
    locked_until  BIGINT NOT NULL,
    known         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, source)
);
INSERT INTO sso_signin_failures_by_source (user_id, source, failures, locked_until, known)
SELECT user_id, '*', failures, locked_until, 0 FROM sso_signin_failures;
DROP TABLE sso_signin_failures;
ALTER TABLE sso_signin_failures_by_source RENAME TO sso_signin_failures;

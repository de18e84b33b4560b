-- Upload URLs work once (docs/security.md §5.5): the id of each upload URL
-- that was used, until the URL expires (at most 15 minutes). Kept in the
-- database rather than in memory so a restart of the server does not make
-- a used URL work again; the duties purge expired ids.
CREATE TABLE cloudshell_spent_file_urls (
    url_id      TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);

-- The audit history that LookupEvents searches. The journal and the
-- delivery files remain the record of truth; this table is their index.
CREATE TABLE audit_events (
    event_id       TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL,
    -- Seconds since the epoch (CloudTrail times have second precision).
    event_time     BIGINT NOT NULL,
    event_name     TEXT NOT NULL,
    event_source   TEXT NOT NULL,
    username       TEXT,
    access_key_id  TEXT,
    read_only      BIGINT NOT NULL,
    record         TEXT NOT NULL
);
CREATE INDEX audit_events_by_time ON audit_events (account_id, event_time, event_id);

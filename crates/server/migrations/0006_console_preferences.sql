-- The console's preferences (font size, theme, Safe Paste), one JSON
-- document per person, so they follow them from browser to browser. The
-- owner is an IAM user's id, or `sso:<identity-store user id>` for an IAM
-- Identity Center user (whichever role they opened the console as).
CREATE TABLE console_preferences (
    user_id      TEXT PRIMARY KEY,
    preferences  TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);

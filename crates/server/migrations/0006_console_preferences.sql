-- The console's preferences (font size, theme, Safe Paste), one JSON
-- document per user, so they follow the user from browser to browser.
CREATE TABLE console_preferences (
    user_id      TEXT PRIMARY KEY REFERENCES users (user_id),
    preferences  TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- Bots, their status history, warm-pool slots and idempotency keys.
-- Timestamps are Unix milliseconds (INTEGER), the same in both dialects.

CREATE TABLE bots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    meeting_platform TEXT NOT NULL,
    -- The full meeting URL and password are kept only while the bot may
    -- still need (re)deploying; they are erased when the bot ends.
    meeting_url TEXT,
    meeting_url_redacted TEXT NOT NULL,
    meeting_password TEXT,
    has_password BOOLEAN NOT NULL,
    display_name TEXT NOT NULL,
    recording_enabled BOOLEAN NOT NULL,
    waiting_room_timeout_secs INTEGER NOT NULL,
    no_one_joined_timeout_secs INTEGER NOT NULL,
    everyone_left_timeout_secs INTEGER NOT NULL,
    status TEXT NOT NULL,
    platform TEXT NOT NULL,
    platform_id TEXT,
    connection_url TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    cleanup_pending BOOLEAN NOT NULL DEFAULT FALSE,
    deploy_started_at INTEGER,
    lease_owner TEXT,
    lease_until INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE INDEX bots_by_status ON bots (status, id);
CREATE INDEX bots_by_platform ON bots (platform, id);
-- What the reconciler scans every pass: only bots that may need work.
CREATE INDEX bots_needing_attention ON bots (platform, id)
    WHERE status IN ('deploying', 'running', 'stopping') OR cleanup_pending;

CREATE TABLE bot_status_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bot_id INTEGER NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    from_status TEXT,
    to_status TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at INTEGER NOT NULL
);

CREATE INDEX bot_status_history_by_bot ON bot_status_history (bot_id, id);

CREATE TABLE pool_slots (
    pool TEXT NOT NULL,
    slot_id TEXT NOT NULL,
    meeting_platform TEXT NOT NULL,
    connection_url TEXT,
    state TEXT NOT NULL,
    bot_id INTEGER,
    failure_reason TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (pool, slot_id)
);

-- A bot holds at most one slot per pool, whatever races happen.
CREATE UNIQUE INDEX pool_slots_one_per_bot ON pool_slots (pool, bot_id) WHERE bot_id IS NOT NULL;
CREATE INDEX pool_slots_idle ON pool_slots (pool, meeting_platform, state, updated_at);

CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    bot_id INTEGER NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);

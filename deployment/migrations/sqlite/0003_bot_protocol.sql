-- The bot protocol: each bot's own tokens (hashes only), its meeting status
-- beside its lifecycle, the meeting-status history, heartbeats and leave.

-- The meeting as the bot reports it (`unknown` until it speaks), with the
-- sub-code and message of its last report and whether it records.
ALTER TABLE bots ADD COLUMN meeting_status TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE bots ADD COLUMN meeting_sub_code TEXT;
ALTER TABLE bots ADD COLUMN meeting_message TEXT;
ALTER TABLE bots ADD COLUMN meeting_recording BOOLEAN;
ALTER TABLE bots ADD COLUMN meeting_status_at INTEGER;
-- Written in batches every few seconds, never once per heartbeat.
ALTER TABLE bots ADD COLUMN last_heartbeat_at INTEGER;
ALTER TABLE bots ADD COLUMN leave_requested_at INTEGER;
-- How a stop the service started on the bot's word (or its silence) ends:
-- `stopped` or `failed`, with the reason recorded then.
ALTER TABLE bots ADD COLUMN end_status TEXT;
ALTER TABLE bots ADD COLUMN end_reason TEXT;
-- The token of a deploy attempt the platform has not answered yet, so a
-- repeated call of the same attempt sends the bot the same environment
-- (ECS refuses a client token reused with other parameters). Erased with
-- the platform's answer and when the bot ends; only the hash lasts.
ALTER TABLE bots ADD COLUMN unconfirmed_bot_token TEXT;

CREATE INDEX bots_by_meeting_status ON bots (meeting_status, id);
-- What the watchdog scans: live bots that spoke or were asked to leave.
CREATE INDEX bots_watched ON bots (id)
    WHERE status IN ('deploying', 'running')
    AND (last_heartbeat_at IS NOT NULL OR leave_requested_at IS NOT NULL OR meeting_status = 'unknown');

-- A bot's tokens: SHA-256 of the token (hex), never the token. Valid for one
-- bot and one deploy attempt; revoked when the bot ends or deploys again.
CREATE TABLE bot_tokens (
    token_hash TEXT PRIMARY KEY,
    bot_id INTEGER NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE INDEX bot_tokens_live_by_bot ON bot_tokens (bot_id) WHERE revoked_at IS NULL;

-- Every meeting-status report (and the service's own verdicts, such as a
-- heartbeat timeout), oldest first. A report's event id makes a retry count
-- once.
CREATE TABLE bot_meeting_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bot_id INTEGER NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    event_id TEXT,
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    sub_code TEXT,
    message TEXT,
    recording BOOLEAN,
    source TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at INTEGER NOT NULL
);

CREATE INDEX bot_meeting_history_by_bot ON bot_meeting_history (bot_id, id);
CREATE UNIQUE INDEX bot_meeting_history_event ON bot_meeting_history (bot_id, event_id)
    WHERE event_id IS NOT NULL;

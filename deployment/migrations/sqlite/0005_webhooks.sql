-- Status webhooks: a durable outbox written in the transaction of the
-- change each event announces, and the attempts made to deliver it.
-- Timestamps are Unix milliseconds, as everywhere.

-- The per-bot receiver a client gave on create (checked then, and again
-- at every delivery).
CREATE TABLE bot_webhook_urls (
    bot_id INTEGER PRIMARY KEY REFERENCES bots (id) ON DELETE CASCADE,
    url TEXT NOT NULL
);

-- One row per event and receiver. `message_id` is the `webhook-id` header:
-- the same on every attempt, so receivers can drop duplicates.
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    bot_id INTEGER NOT NULL REFERENCES bots (id) ON DELETE CASCADE,
    -- operator (WEBHOOK_URL) or bot (the bot's webhook_url).
    destination TEXT NOT NULL,
    url TEXT NOT NULL,
    event_type TEXT NOT NULL,
    -- The exact body sent and signed.
    payload TEXT NOT NULL,
    -- pending, delivered or failed.
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    -- Where WEBHOOK_MAX_AGE counts from: the creation, or a manual retry.
    age_from INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    claimed_by TEXT,
    claim_until INTEGER,
    last_attempt_at INTEGER,
    last_status_code INTEGER,
    last_error TEXT,
    last_response TEXT,
    delivered_at INTEGER,
    updated_at INTEGER NOT NULL
);

-- What the delivery worker scans: only undelivered rows, by due time.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id)
    WHERE state = 'pending';
-- A bot's next event waits for the one before it (per receiver).
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (bot_id, destination, id)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_by_bot ON webhook_deliveries (bot_id, id);

CREATE TABLE webhook_attempts (
    delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    status_code INTEGER,
    error TEXT,
    response TEXT,
    PRIMARY KEY (delivery_id, number)
);

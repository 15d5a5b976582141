-- Placement across several platforms: each bot's queue priority and the time
-- it entered the queue, one capacity row per platform (locked by every
-- placement on that platform, so a placement and the count it relies on are
-- one atomic step across service processes), and named leases (the platform
-- sweep runs in one service process at a time).

ALTER TABLE bots ADD COLUMN priority BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bots ADD COLUMN queued_at BIGINT;

-- The queue, in drain order.
CREATE INDEX bots_queue ON bots (priority DESC, queued_at, id) WHERE status = 'queued';
-- What a placement counts: the bots holding capacity on a platform.
CREATE INDEX bots_holding_capacity ON bots (platform, meeting_platform)
    WHERE status IN ('deploying', 'running', 'stopping');

CREATE TABLE platform_capacity (
    platform TEXT PRIMARY KEY,
    -- The cap the last service process to start with this platform set
    -- (NULL: no cap), for the operator's view.
    max_bots BIGINT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE service_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    renewed_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

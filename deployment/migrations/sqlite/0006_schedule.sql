-- Scheduled bots and deploy intents: when the bot must be in its meeting
-- (join_at, optional) and when its deploy is due (deploy_at: join_at minus
-- the platforms' lead time for a scheduled bot; the creation time for a bot
-- created to deploy at once, so a crash between the insert and the platform
-- call leaves a due row any replica finishes). Both in Unix milliseconds.

ALTER TABLE bots ADD COLUMN join_at INTEGER;
ALTER TABLE bots ADD COLUMN deploy_at INTEGER;

-- What the scheduler reads on every tick: only the bots whose deploy is
-- due, by deploy time. A bot scheduled a day ahead is never read before
-- its time.
CREATE INDEX bots_deploy_due ON bots (deploy_at, id)
    WHERE status IN ('pending', 'scheduled') AND deploy_at IS NOT NULL;

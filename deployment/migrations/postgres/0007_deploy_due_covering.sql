-- The deploy projection of a create counts the bots not started yet ahead
-- of it, by deploy time and meeting platform, over up to an hour of the
-- schedule. With the meeting platform and the status in the index, that
-- count can read the index alone instead of one table row per bot ahead.
DROP INDEX bots_deploy_due;
CREATE INDEX bots_deploy_due ON bots (deploy_at, id, meeting_platform, status)
    WHERE status IN ('pending', 'scheduled') AND deploy_at IS NOT NULL;

-- The installation id: random, created with the schema, never changed.
-- Every name and mark a platform gives a bot includes it, so two databases
-- (staging and production on one cluster, a reset database) never collide.
CREATE TABLE installation (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    id TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

INSERT INTO installation (singleton, id, created_at)
VALUES (1, lower(hex(randomblob(8))), CAST(strftime('%s', 'now') AS INTEGER) * 1000);

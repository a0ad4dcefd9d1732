-- The autoscaler's choices per instance (InstanceRequested v2, InstanceCreated v2): the zone it was
-- put in, and whether it is a standing worker (kept for the pool's min_instances).
ALTER TABLE instances ADD COLUMN IF NOT EXISTS zone text;
ALTER TABLE instances ADD COLUMN IF NOT EXISTS standing boolean;

-- Every PoolScalingDecided, by its position in the log: what the autoscaler decided for a pool and
-- the numbers it compared (decision: the event's fields as JSON). The newest row of a pool is what
-- the operator's pools page shows; the rows of a pool are its audit trail.
CREATE TABLE pool_decisions (
    topic        text NOT NULL,
    "partition"  int NOT NULL,
    "offset"     bigint NOT NULL,
    pool         text NOT NULL,
    event_id     text NOT NULL,
    occurred_at  bigint NOT NULL,
    producer     text NOT NULL,
    decision     jsonb NOT NULL,
    PRIMARY KEY (topic, "partition", "offset")
);
CREATE INDEX pool_decisions_by_pool ON pool_decisions (pool, occurred_at DESC);

-- Snapshots of the long-lived folds (projections/snapshots): not projections, never replayed.

-- the resolver: per partition of the batch topic, how far its batch rows reflect the log
CREATE TABLE snapshot_partitions (
    topic text NOT NULL,
    partition integer NOT NULL,
    format text NOT NULL,
    next_offset bigint NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- the resolver: one batch's state, folded from its events below as_of
CREATE TABLE snapshot_batches (
    topic text NOT NULL,
    batch_id bigint NOT NULL,
    partition integer NOT NULL,
    format text NOT NULL,
    as_of bigint NOT NULL,
    quiescent boolean NOT NULL,
    state bytea NOT NULL,
    PRIMARY KEY (topic, batch_id)
);
ALTER TABLE snapshot_batches ALTER COLUMN state SET STORAGE EXTERNAL;  -- compressed already
CREATE INDEX snapshot_batches_active ON snapshot_batches (topic, partition) WHERE NOT quiescent;

-- a view over several topics (the scheduling state) and the positions it covers
CREATE TABLE snapshot_views (
    name text PRIMARY KEY,
    format text NOT NULL,
    positions jsonb NOT NULL,
    state bytea NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE snapshot_views ALTER COLUMN state SET STORAGE EXTERNAL;

-- The front end's own truth: users and tokens, billing projects, batch ids and idempotency tokens,
-- update bookkeeping (reserved id blocks, received ranges), cancellation flags. Read models live
-- in projections/migrations; these tables are written only by the front end.

CREATE TABLE IF NOT EXISTS front_users (
    name        text PRIMARY KEY,
    created_at  bigint NOT NULL            -- ms since the epoch
);

-- Bearer tokens, stored as sha256 hex digests: a database leak does not leak usable tokens.
CREATE TABLE IF NOT EXISTS front_tokens (
    token_sha256  text PRIMARY KEY,
    user_name     text NOT NULL REFERENCES front_users(name) ON DELETE CASCADE,
    created_at    bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS front_billing_projects (
    name        text PRIMARY KEY,
    created_at  bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS front_billing_project_members (
    billing_project  text NOT NULL REFERENCES front_billing_projects(name) ON DELETE CASCADE,
    user_name        text NOT NULL REFERENCES front_users(name) ON DELETE CASCADE,
    PRIMARY KEY (billing_project, user_name)
);

-- One row per batch: allocates batch ids, deduplicates creates by (user, token), and reserves
-- contiguous job / job-group id blocks for its updates.
CREATE TABLE IF NOT EXISTS front_batches (
    batch_id               bigserial PRIMARY KEY,
    user_name              text NOT NULL,
    billing_project        text NOT NULL,
    token                  text NOT NULL,
    attributes             jsonb NOT NULL DEFAULT '{}',
    time_created           bigint NOT NULL,
    cancelled              boolean NOT NULL DEFAULT false,
    deleted                boolean NOT NULL DEFAULT false,
    n_updates              integer NOT NULL DEFAULT 0,
    n_reserved_jobs        integer NOT NULL DEFAULT 0,
    n_reserved_job_groups  integer NOT NULL DEFAULT 0,   -- not counting the root group 0
    n_committed_jobs       integer NOT NULL DEFAULT 0,
    UNIQUE (user_name, token)
);

CREATE TABLE IF NOT EXISTS front_updates (
    batch_id            bigint NOT NULL REFERENCES front_batches(batch_id),
    update_id           integer NOT NULL,
    token               text NOT NULL,
    n_jobs              integer NOT NULL,
    n_job_groups        integer NOT NULL,
    start_job_id        integer NOT NULL,
    start_job_group_id  integer NOT NULL,
    time_created        bigint NOT NULL,
    committed           boolean NOT NULL DEFAULT false,
    time_committed      bigint,
    PRIMARY KEY (batch_id, update_id),
    UNIQUE (batch_id, token)
);

-- Ranges of update-relative job ids whose JobCreated events are in the log. A resent bunch finds
-- its range here and adds nothing; commit sums the ranges to check the job count.
CREATE TABLE IF NOT EXISTS front_job_ranges (
    batch_id      bigint NOT NULL,
    update_id     integer NOT NULL,
    first_job_id  integer NOT NULL,
    last_job_id   integer NOT NULL,
    PRIMARY KEY (batch_id, update_id, first_job_id),
    FOREIGN KEY (batch_id, update_id) REFERENCES front_updates(batch_id, update_id)
);

-- Job groups whose JobGroupCreated is in the log (the root group 0 is inserted with the batch):
-- needed to check parents, nesting depth, and refuse children of a cancelled group.
CREATE TABLE IF NOT EXISTS front_job_groups (
    batch_id             bigint NOT NULL REFERENCES front_batches(batch_id),
    job_group_id         integer NOT NULL,
    update_id            integer,                 -- null for the root group
    parent_job_group_id  integer,                 -- null for the root group
    depth                integer NOT NULL,        -- root 0
    cancelled            boolean NOT NULL DEFAULT false,
    PRIMARY KEY (batch_id, job_group_id)
);

-- The read models behind the HTTP API: projections of the batch and instance topics.
-- Every table except scheduling_explanations (a scheduler cache) is rebuilt by `squall replay`.
-- Times are bigint milliseconds since the epoch; JSON is jsonb. Never name a schema here:
-- migrations run with search_path set to the target schema (replay builds into fresh ones).

CREATE TABLE batches (
    batch_id                bigint PRIMARY KEY,
    "user"                  text NOT NULL,
    billing_project         text NOT NULL,
    token                   text NOT NULL,
    attributes              jsonb NOT NULL DEFAULT '{}',
    callback                text,
    cancel_after_n_failures int,
    state                   text NOT NULL DEFAULT 'complete',  -- 'running' | 'complete' (no committed jobs: complete, as Hail)
    cancelled               boolean NOT NULL DEFAULT false,
    deleted                 boolean NOT NULL DEFAULT false,
    n_jobs                  int NOT NULL DEFAULT 0,
    n_completed             int NOT NULL DEFAULT 0,
    n_succeeded             int NOT NULL DEFAULT 0,
    n_failed                int NOT NULL DEFAULT 0,  -- Failed + Error
    n_cancelled             int NOT NULL DEFAULT 0,
    time_created            bigint NOT NULL,
    time_closed             bigint,                  -- first commit
    time_completed          bigint,
    msec_mcpu               bigint NOT NULL DEFAULT 0,
    cost                    double precision NOT NULL DEFAULT 0,
    cost_breakdown          jsonb NOT NULL DEFAULT '{}',  -- {resource: cost}
    n_committed_updates     int NOT NULL DEFAULT 0
);
CREATE INDEX batches_user_id ON batches ("user", batch_id DESC);
CREATE INDEX batches_billing_project_id ON batches (billing_project, batch_id DESC);

CREATE TABLE batch_updates (
    batch_id            bigint NOT NULL,
    update_id           int NOT NULL,
    token               text NOT NULL,
    n_jobs              int NOT NULL,
    n_job_groups        int NOT NULL,
    start_job_id        int NOT NULL,
    start_job_group_id  int NOT NULL,
    committed           boolean NOT NULL DEFAULT false,
    time_created        bigint NOT NULL,
    time_committed      bigint,
    jobs_per_group      jsonb NOT NULL DEFAULT '{}',  -- {job_group_id: n jobs created}; added to the groups at commit
    PRIMARY KEY (batch_id, update_id)
);

CREATE TABLE job_groups (
    batch_id                bigint NOT NULL,
    job_group_id            int NOT NULL,
    parent_job_group_id     int,                     -- NULL for the root group 0
    ancestor_ids            int[] NOT NULL,          -- self first, root last: the groups a job here counts in
    update_id               int,
    attributes              jsonb NOT NULL DEFAULT '{}',
    callback                text,
    cancel_after_n_failures int,
    cancelled               boolean NOT NULL DEFAULT false,
    state                   text NOT NULL DEFAULT 'complete',
    n_jobs                  int NOT NULL DEFAULT 0,  -- recursive: jobs of this group and its descendants
    n_completed             int NOT NULL DEFAULT 0,
    n_succeeded             int NOT NULL DEFAULT 0,
    n_failed                int NOT NULL DEFAULT 0,
    n_cancelled             int NOT NULL DEFAULT 0,
    time_created            bigint NOT NULL,
    time_completed          bigint,
    msec_mcpu               bigint NOT NULL DEFAULT 0,
    cost                    double precision NOT NULL DEFAULT 0,
    cost_breakdown          jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (batch_id, job_group_id)
);

CREATE TABLE jobs (
    batch_id            bigint NOT NULL,
    job_id              int NOT NULL,
    job_group_id        int NOT NULL,
    update_id           int NOT NULL,
    name                text,
    "user"              text NOT NULL,
    billing_project     text NOT NULL,
    state               text NOT NULL,   -- Pending|Ready|Creating|Running|Success|Failed|Error|Cancelled
    committed           boolean NOT NULL DEFAULT false,
    always_run          boolean NOT NULL,
    n_max_attempts      int NOT NULL,
    parent_ids          int[] NOT NULL,
    attributes          jsonb NOT NULL DEFAULT '{}',
    spec                jsonb,
    cores_mcpu          int NOT NULL,
    memory_bytes        bigint NOT NULL,
    storage_gib         int NOT NULL,
    preemptible         boolean NOT NULL,
    worker_type         text,
    exit_code           int,
    reason              text,
    current_attempt_id  text,
    n_attempts          int NOT NULL DEFAULT 0,
    time_created        bigint NOT NULL,
    time_ready          bigint,
    not_before          bigint,          -- a retry's backoff: not schedulable before this time
    start_time          bigint,
    end_time            bigint,
    duration_ms         bigint,
    msec_mcpu           bigint NOT NULL DEFAULT 0,
    cost                double precision NOT NULL DEFAULT 0,
    cost_breakdown      jsonb NOT NULL DEFAULT '{}',
    status              jsonb,           -- the last MJC as a Hail-shaped worker status
    PRIMARY KEY (batch_id, job_id)
);
CREATE INDEX jobs_group ON jobs (batch_id, job_group_id, job_id);
CREATE INDEX jobs_update ON jobs (batch_id, update_id);
CREATE INDEX jobs_state ON jobs (batch_id, state, job_id);

CREATE TABLE attempts (
    batch_id        bigint NOT NULL,
    job_id          int NOT NULL,
    attempt_id      text NOT NULL,
    instance_name   text,
    scheduled_at    bigint,
    start_time      bigint,
    end_time        bigint,
    outcome         text,   -- Success | Failed | Error | Cancelled (the MJC's), NULL while running
    exit_code       int,
    failure_cause   text,   -- events.failures code
    error           text,
    reason          text,
    cores_mcpu      int NOT NULL DEFAULT 0,
    memory_bytes    bigint NOT NULL DEFAULT 0,
    storage_gib     int NOT NULL DEFAULT 0,
    msec_mcpu       bigint NOT NULL DEFAULT 0,
    cost            double precision NOT NULL DEFAULT 0,
    status          jsonb,
    PRIMARY KEY (batch_id, job_id, attempt_id)
);

CREATE TABLE instances (
    name             text PRIMARY KEY,
    pool             text,
    provider         text,
    state            text NOT NULL,   -- pending | active | inactive | deleted
    cores_mcpu       int,
    memory_bytes     bigint,
    storage_gib      int,
    region           text,
    preemptible      boolean,
    machine_type     text,
    job_private_for  text,
    provider_id      text,
    agent_version    text,
    time_requested   bigint,
    time_created     bigint,
    time_activated   bigint,
    last_heartbeat   bigint,
    time_deactivated bigint,
    time_deleted     bigint,
    reason           text
);

-- The audit index: job -> its events' positions in the log (batch-level events have job_id NULL).
CREATE TABLE audit (
    batch_id      bigint NOT NULL,
    job_id        int,
    topic         text NOT NULL,
    "partition"   int NOT NULL,
    "offset"      bigint NOT NULL,
    event_type    text NOT NULL,
    event_id      text NOT NULL,
    occurred_at   bigint NOT NULL,
    causation_id  text,
    producer      text NOT NULL,
    attempt_id    text
);
CREATE UNIQUE INDEX audit_position ON audit (topic, "partition", "offset", coalesce(job_id, 0));
CREATE INDEX audit_job ON audit (batch_id, job_id, topic, "partition", "offset");

-- Next offset to read per (projection, topic, partition), written in the same transaction as the rows.
CREATE TABLE projection_offsets (
    projection   text NOT NULL,
    topic        text NOT NULL,
    "partition"  int NOT NULL,
    next_offset  bigint NOT NULL,
    PRIMARY KEY (projection, topic, "partition")
);

-- Messages that could not be decoded or applied; the processor skipped them.
CREATE TABLE quarantine (
    topic           text NOT NULL,
    "partition"     int NOT NULL,
    "offset"        bigint NOT NULL,
    projection      text NOT NULL,
    event_type      text,
    reason          text NOT NULL,
    raw             bytea NOT NULL,
    quarantined_at  bigint NOT NULL,  -- the record's log timestamp, so replay quarantines identically
    PRIMARY KEY (topic, "partition", "offset")
);

-- Written by the scheduler each cycle (a cache, not a projection; replay ignores it).
CREATE TABLE scheduling_explanations (
    batch_id     bigint NOT NULL,
    job_id       int NOT NULL,
    reason_code  text NOT NULL,
    message      text NOT NULL,
    updated_at   bigint NOT NULL,
    PRIMARY KEY (batch_id, job_id)
);

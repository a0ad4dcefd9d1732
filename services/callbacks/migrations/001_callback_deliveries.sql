-- One row per callback squall has fired: a batch (job_group_id 0) or job group that completed with
-- n_jobs jobs. A later update that adds jobs and completes again is a new completion, a new row.
-- The row is written before the POST (at most once, as Hail fires callbacks without retrying a
-- lost delivery) and then updated with what the receiver answered, for operators.
CREATE TABLE IF NOT EXISTS callback_deliveries (
    batch_id       bigint NOT NULL,
    job_group_id   int NOT NULL,
    n_jobs         int NOT NULL,
    url            text NOT NULL,
    claimed_at     bigint NOT NULL,        -- ms since the epoch
    finished_at    bigint,
    status_code    int,                    -- the receiver's HTTP status; NULL if it never answered
    error          text,                   -- why it failed, if it did
    PRIMARY KEY (batch_id, job_group_id, n_jobs)
);

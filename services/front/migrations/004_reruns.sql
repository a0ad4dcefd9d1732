-- Copies made by POST /batches/{id}/rerun-failed: each job is re-run at most once (its copy may be
-- re-run in turn); a later re-run skips the jobs listed here and wires copies to the newest copy of
-- a parent. Written in the transaction that reserves and commits the re-run's update.
CREATE TABLE IF NOT EXISTS front_reruns (
    batch_id    bigint NOT NULL,
    update_id   integer NOT NULL,
    old_job_id  integer NOT NULL,
    new_job_id  integer NOT NULL,
    PRIMARY KEY (batch_id, old_job_id),
    UNIQUE (batch_id, new_job_id),
    FOREIGN KEY (batch_id, update_id) REFERENCES front_updates(batch_id, update_id)
);

-- Retry policies (events/core/retries.py). A job's memory_bytes and preemptible are from now on what
-- its next attempt asks for (a retry policy may raise the one and clear the other); each attempt
-- records the retry decided after it: {rule, cause, not_before, memory_bytes?, preemptible?}.
ALTER TABLE batches ADD COLUMN IF NOT EXISTS retry_policy jsonb;   -- the batch's default for its jobs
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS retry_policy jsonb;      -- the job's own over the batch's, field by field
ALTER TABLE attempts ADD COLUMN IF NOT EXISTS retry jsonb;

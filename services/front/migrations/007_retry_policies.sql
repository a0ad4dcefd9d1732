-- A batch's default retry policy for its jobs (services/front/retry_policy.py): each job planned in
-- any of the batch's updates gets it under its own fields.
ALTER TABLE front_batches ADD COLUMN IF NOT EXISTS retry_policy jsonb;

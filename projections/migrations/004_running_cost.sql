-- Cost while attempts run, per Hail resource (projections/cost.py, projections/readmodel/ledger.py).
-- usage: {resource: quantity x milliseconds billed}, integers, so sums are exact; cost and
-- cost_breakdown are priced from it. billed_until: the latest time the attempt's worker reported it
-- running (RunningAttemptsReported); billed_ms: what it has been billed so far (start to billed_until
-- while it runs, start to end once it ended).
-- Rows projected before this migration keep their old cost and breakdown names until the read
-- model is rebuilt (`squall replay --in-place`), which re-derives every row from the log.
ALTER TABLE batches ADD COLUMN IF NOT EXISTS usage jsonb NOT NULL DEFAULT '{}';
ALTER TABLE job_groups ADD COLUMN IF NOT EXISTS usage jsonb NOT NULL DEFAULT '{}';
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS usage jsonb NOT NULL DEFAULT '{}';
ALTER TABLE attempts ADD COLUMN IF NOT EXISTS billed_until bigint;
ALTER TABLE attempts ADD COLUMN IF NOT EXISTS billed_ms bigint NOT NULL DEFAULT 0;
-- attempts that ended before this migration were billed start to end by the old fold
UPDATE attempts SET billed_ms = greatest(0, end_time - start_time)
    WHERE end_time IS NOT NULL AND start_time IS NOT NULL;

-- A billing project's spending limit in USD (Hail's `limit`); NULL means no limit. Once the
-- project's accrued cost (the sum of the read model's batches.cost) reaches it, creating batches
-- or updates in it answers 403 and the front's billing-limit loop cancels its running batches.
-- Set with `squall billing-project set-limit BP AMOUNT` or, by an operator,
-- POST /api/v1alpha/billing_limits/{bp}/edit.
ALTER TABLE front_billing_projects ADD COLUMN IF NOT EXISTS limit_usd double precision
    CONSTRAINT front_billing_projects_limit_non_negative CHECK (limit_usd IS NULL OR limit_usd >= 0);

-- When the callback service first ran against this database. Completions before it are history
-- (a deployment that existed before callbacks were fired): they are never posted, so turning the
-- service on does not replay years of callbacks at their receivers.
CREATE TABLE IF NOT EXISTS callbacks_enabled (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    since     bigint NOT NULL          -- ms since the epoch
);

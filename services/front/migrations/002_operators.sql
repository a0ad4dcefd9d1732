-- Operators see the fleet (the UI's instances and pools page); other users see only their own
-- batches. Granted with `squall user create NAME --operator`; `squall up` makes its default user one.
ALTER TABLE front_users ADD COLUMN IF NOT EXISTS is_operator boolean NOT NULL DEFAULT false;

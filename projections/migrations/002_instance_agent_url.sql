-- Where the worker agent of an instance serves live logs (InstanceActivated v2's agent_url); the
-- front end asks it for the tail of a running attempt's log. NULL for agents that announce none.
ALTER TABLE instances ADD COLUMN IF NOT EXISTS agent_url text;

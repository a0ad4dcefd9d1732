-- Tokens can be listed, revoked and can expire (`squall user tokens NAME`, `squall user revoke-token
-- NAME TOKEN_ID`, `squall user create/new-token NAME --expires-in 30d`). A token's public id is the
-- start of its digest: it names the token in listings without being usable as one. A revoked or
-- expired token authenticates nothing, from the next request on (the front keeps no token cache).
ALTER TABLE front_tokens ADD COLUMN IF NOT EXISTS token_id text GENERATED ALWAYS AS (substr(token_sha256, 1, 12)) STORED;
ALTER TABLE front_tokens ADD COLUMN IF NOT EXISTS expires_at bigint;   -- ms since the epoch; NULL: never
ALTER TABLE front_tokens ADD COLUMN IF NOT EXISTS revoked_at bigint;   -- ms since the epoch; NULL: not revoked
CREATE INDEX IF NOT EXISTS front_tokens_by_user ON front_tokens (user_name, token_id);

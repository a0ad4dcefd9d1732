-- Which buckets a job may name in input_files/output_files (hailtop's gcs_bucket_allow_list, per
-- user or per billing project). Granted with `squall bucket grant BUCKET --user U | --billing-project P`;
-- squall's own bucket is never grantable. With the embedded GCS-API server these grants are the ACL.
CREATE TABLE IF NOT EXISTS front_bucket_grants (
    bucket           text NOT NULL,
    user_name        text REFERENCES front_users(name) ON DELETE CASCADE,
    billing_project  text REFERENCES front_billing_projects(name) ON DELETE CASCADE,
    granted_at       bigint NOT NULL,    -- ms since the epoch
    CONSTRAINT front_bucket_grants_one_grantee CHECK ((user_name IS NULL) <> (billing_project IS NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS front_bucket_grants_user ON front_bucket_grants (bucket, user_name)
    WHERE user_name IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS front_bucket_grants_project ON front_bucket_grants (bucket, billing_project)
    WHERE billing_project IS NOT NULL;

-- A user's own GCS service-account key (real GCS only): job files are copied as the user, never as
-- the worker. Set with `squall user set-credentials USER KEYFILE`. The front end publishes it to
-- squall's bucket (users/<user>/gcs-key.json), where workers resolve it from the job's user; it
-- never travels in an event. published_sha256 is the digest of the copy last published.
CREATE TABLE IF NOT EXISTS front_user_credentials (
    user_name         text PRIMARY KEY REFERENCES front_users(name) ON DELETE CASCADE,
    key_json          text NOT NULL,
    client_email      text NOT NULL,
    key_sha256        text NOT NULL,
    updated_at        bigint NOT NULL,
    published_sha256  text
);

"""The front end: Hail Batch's /api/v1alpha REST API over squall's event log.

Run it:  python -m services.front --host 127.0.0.1 --port 8000 --bootstrap HOST:PORT \
             --database-url postgresql://... [--topic-prefix squall.] [--home ~/.squall] [--regions local]
OpenAPI: GET /openapi.json (docs at /docs); Prometheus: GET /metrics; health: GET /healthcheck.
Build it in-process (tests, local stack): `create_app(FrontDeps(pool=..., publisher=..., job_data=...))`.

Modules, one concept each:
  app            the FastAPI app, error mapping (FrontError → 4xx JSON {"message"}; 503 when a dependency is down)
  server         `python -m services.front`: migrations, Kafka producer, PostgreSQL pool, uvicorn
  deps           FrontDeps: everything the routes need, built once
  routes_*       the HTTP surface: batches (writes + batch reads), jobs (jobs, groups, logs), meta + squall's own
  specs, fields  request validation (Hail's rules; every error names the field)
  plan           pure: parsed specs + reserved id block → the events to append (deterministic ids)
  submission     the write pattern: reserve in front tables → append (commit point) → record
  store          the front's own tables (migrations/): batch ids, tokens, update id blocks, received ranges
  reads, shapes  the read side over the projections' tables, in Hail's JSON shapes; query: v1 `q=` language
  users, auth    users, sha256-hashed bearer tokens, billing-project membership
  job_files      gs://-only job files (shape at parse time; bucket grants and credentials at submit)
  buckets, credentials   bucket grants; users' own GCS keys (real GCS), published for the workers
  why            a job's "why is it (not) running" answer
"""

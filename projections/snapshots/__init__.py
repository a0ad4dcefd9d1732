"""Snapshots of the long-lived folds (resolver, scheduling view), so a start or a take-over folds
only the tail of the log written since the last snapshot, never the whole log.

- `sealed`: the bytes of one snapshot: a header naming the fold's format (a fingerprint of the fold's
  code and state shape) and a digest of the body. A snapshot of another format is *outdated* and
  ignored (refold); one whose bytes do not check out is *corrupt* and ignored loudly (refold).
- `store`: where snapshots live (PostgreSQL in production, `postgres.PostgresSnapshotStore`; an
  in-memory fake that passes the same contract suite for unit tests), and their rules: a batch row
  only ever moves forward in the log, a partition's mark only ever grows.
- `schedule`: when to take one (an interval, a bound on the tail, a bound on the time spent).

Why PostgreSQL rather than a compacted topic: docs/ARCHITECTURE.md, "Snapshots of the folds".
"""

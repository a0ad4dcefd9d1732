"""Process plumbing every squall process shares: settings (`config`), Prometheus metrics (`metrics`),
signal handling (`signals`) and the one way a process's `__main__` runs (`run.run_process`).

Why under `events/`: it is the bottom layer, the only one every process may import. The worker
(`events` <- `worker`) and the projections (`events` <- `projections`) run as processes of their own
beside the services, and none of them may import `services/`; the plumbing depends only on
`events` itself (topics, Kafka credentials, the object store). It holds no decision of squall's:
the pure core stays in `events/core`.
"""

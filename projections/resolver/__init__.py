"""The dependency resolver: runs the pure lifecycle (events/core) over the batch topic and appends
the events it derives. `core.py` is the logic (no broker), `service.py` the consumer-group loop,
`python -m projections.resolver` the process."""

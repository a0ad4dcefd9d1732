"""Batch and job-group callbacks, as Hail fires them: when a batch (or a job group) with a
`callback` URL completes, POST its status JSON (the body `GET .../batches/{id}` or
`GET .../job-groups/{g}` returns) to that URL. `service.py` is the loop, `deliveries.py` the
table of what was sent, `python -m services.callbacks` the process.
"""

"""The front end: Hail Batch's REST API over squall's event log (see services/front/app.py)."""

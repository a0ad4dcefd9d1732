"""What the workers recorded about attempts — logs, status documents, resource usage — read back for
the API and the web UI: from squall's bucket through the ObjectStore, and for a running attempt
from its worker agent's own HTTP endpoint (the live tail). Nothing here reads a host path.

    data = JobData(store, system_bucket, AgentLogs(store, system_bucket))
    log = await data.log(batch_id, job_id, attempt_id, "main", where=await locate(conn, ...))
"""

from __future__ import annotations

from services.jobdata.agents import AgentLogs
from services.jobdata.locate import AttemptLocation, locate
from services.jobdata.reader import JobData

__all__ = ["AgentLogs", "AttemptLocation", "JobData", "locate"]

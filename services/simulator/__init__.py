"""The fleet-scale simulator: squall's real scheduling algorithms over simulated time.

`simulate(load_workload(path), seed)` runs a workload file and returns a `Report`; the
`squall simulate WORKLOAD` command prints it. See engine.py for what is real and what is modelled.
"""

from services.simulator.engine import Simulation, simulate
from services.simulator.report import Report
from services.simulator.workload import Workload, WorkloadError, load_workload, parse_workload

__all__ = ["Report", "Simulation", "Workload", "WorkloadError", "load_workload", "parse_workload", "simulate"]

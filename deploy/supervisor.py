"""Keep the local stack's components alive: restart whatever dies, with backoff, and say so.

    python -m deploy.supervisor --home ~/.squall      # started (and stopped) by squall up / down

`squall up` writes the plan, run/supervised.json (each service's command, whether Kafka and
PostgreSQL are the stack's own), and starts this process, which starts what is not running and
then checks every half second. A component that died is started again: at once the first time,
then after 1, 2, 4 ... 30 s while it keeps dying (the count resets once it has lived 30 s), so a
crash loop neither spins nor gives up. Every restart is a line in logs/supervisor.log (why: its
exit code or signal when it was ours, "gone" when it was adopted) and counted in
run/supervisor.json, which `squall status` shows.

It never fights `squall down`: down stops it first (SIGTERM ends it at once, even in the middle of
starting something), then stops the components. SIGHUP makes it re-read the plan (squall up on a
running stack). Local worker agents are not its business: the autoscaler's local provider restarts
those, as systemd would on a VM. If the supervisor itself is killed, the components keep running;
`squall up` starts a new one, which adopts them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from deploy.processes import ProcessSpec, ProcessTable, runs_module

PLAN_FILE = "supervised.json"
STATE_FILE = "supervisor.json"
CHECK_PERIOD_S = 0.5
STABLE_AFTER_S = 30.0  # alive this long: the next death starts the backoff from the beginning
MAX_DELAY_S = 30.0

log = logging.getLogger("squall.supervisor")


@dataclass
class Plan:
    services: list[ProcessSpec]
    kafka: bool  # the stack's own broker (in home/kafka), to keep running too
    postgres: bool
    storage: bool = False  # the stack's own GCS-API server (in home/storage)

    def save(self, home: Path) -> None:
        path = home / "run" / PLAN_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"services": [asdict(s) for s in self.services], "kafka": self.kafka,
                                   "postgres": self.postgres, "storage": self.storage}, indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, home: Path) -> Plan:
        data = json.loads((home / "run" / PLAN_FILE).read_text())
        services = [ProcessSpec(s["name"], s["module"], tuple(s["args"])) for s in data["services"]]
        return cls(services, bool(data["kafka"]), bool(data["postgres"]), bool(data.get("storage", False)))


def restart_delay(deaths_in_a_row: int) -> float:
    """0 s for the first death, then 1, 2, 4, ... capped at MAX_DELAY_S."""
    return 0.0 if deaths_in_a_row <= 1 else min(MAX_DELAY_S, 2.0 ** (deaths_in_a_row - 2))


@dataclass
class Watched:
    """One component: how to tell it is alive and how to start it, and its restart history."""

    name: str
    alive: Callable[[], bool]
    start: Callable[[], None]
    why_dead: Callable[[], str] = lambda: "is gone"
    restarts: int = 0
    deaths_in_a_row: int = 0
    alive_since: float | None = None
    restart_at: float | None = None  # set when it was found dead
    last_death: str = ""
    started_once: bool = False


@dataclass
class Supervisor:
    home: Path
    plan: Plan
    clock: Callable[[], float] = time.monotonic
    watched: list[Watched] = field(default_factory=list)
    _children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.table = ProcessTable(self.home)
        self.watched = self._components()
        self._load_counts()

    # --- the components -------------------------------------------------------------------------
    def _components(self) -> list[Watched]:
        out = []
        if self.plan.kafka:  # infrastructure first: the services need it to start
            from deploy.kafka import stack_broker

            broker = stack_broker(self.home)
            out.append(Watched("kafka", broker.is_running, lambda: _discard(broker.start())))
        if self.plan.postgres:
            from deploy.postgres import EmbeddedPostgres

            pg = EmbeddedPostgres(self.home / "postgres")
            out.append(Watched("postgres", pg.is_running, lambda: _discard(pg.start())))
        if self.plan.storage:
            from deploy.objectstore import FakeGcsServer
            from deploy.stack_storage import STORAGE_DIR

            store = FakeGcsServer(self.home / STORAGE_DIR)  # a restart keeps its port: URLs stay valid
            out.append(Watched("storage", store.is_running, lambda: _discard(store.start())))
        for spec in self.plan.services:
            out.append(Watched(spec.name, lambda s=spec: self._service_alive(s),  # type: ignore[misc]
                               lambda s=spec: self._start_service(s),  # type: ignore[misc]
                               lambda s=spec: self._why_dead(s)))  # type: ignore[misc]
        return out

    def _service_alive(self, spec: ProcessSpec) -> bool:
        child = self._children.get(spec.name)
        if child is not None and child.poll() is None:
            return True
        pid = self.table.pid(spec.name)
        return pid is not None and runs_module(pid, spec.module)

    def _start_service(self, spec: ProcessSpec) -> None:
        self._children[spec.name] = self.table.spawn(spec)

    def _why_dead(self, spec: ProcessSpec) -> str:
        child = self._children.get(spec.name)
        if child is None or child.returncode is None:
            return "is gone"
        code = child.returncode
        return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"

    # --- the loop ------------------------------------------------------------------------------
    def step(self) -> None:
        """Check every component once; start the dead ones whose backoff has passed."""
        now = self.clock()
        changed = False
        for w in self.watched:
            if w.alive():
                if w.alive_since is None:
                    w.alive_since = now
                if w.deaths_in_a_row and now - w.alive_since >= STABLE_AFTER_S:
                    w.deaths_in_a_row = 0
                w.started_once = True
                continue
            if w.restart_at is None:  # just found dead
                w.deaths_in_a_row += 1 if w.started_once else 0
                w.last_death = w.why_dead() if w.started_once else "was not running"
                w.restart_at = now + restart_delay(w.deaths_in_a_row)
                w.alive_since = None
                if w.started_once:
                    log.warning("%s %s; restarting it in %.0f s", w.name, w.last_death, w.restart_at - now)
                changed = True
            if now < w.restart_at:
                continue
            try:
                w.start()
            except Exception as exc:  # it stays dead: the next attempt waits longer
                w.deaths_in_a_row += 1
                w.restart_at = self.clock() + restart_delay(w.deaths_in_a_row)
                log.error("starting %s failed (%s); next try in %.0f s", w.name, exc, w.restart_at - self.clock())
                changed = True
                continue
            if w.started_once:
                w.restarts += 1
                log.warning("restarted %s (restart #%d)", w.name, w.restarts)
            else:
                log.info("started %s", w.name)
            w.started_once, w.restart_at, w.alive_since = True, None, self.clock()
            changed = True
        if changed:
            self._save_counts()

    def reap(self) -> None:
        for child in self._children.values():
            child.poll()  # collects the exit status: no zombies

    def run(self, stopping: Callable[[], bool], reload: Callable[[], bool]) -> None:
        log.info("supervising %s", ", ".join(w.name for w in self.watched))
        while not stopping():
            if reload():
                self.plan = Plan.load(self.home)
                old = {w.name: w for w in self.watched}
                self.watched = self._components()
                for w in self.watched:  # keep each component's history across a reload
                    if w.name in old:
                        o = old[w.name]
                        w.restarts, w.deaths_in_a_row, w.started_once = o.restarts, o.deaths_in_a_row, o.started_once
                log.info("re-read the plan: %s", ", ".join(w.name for w in self.watched))
            self.step()
            self.reap()
            time.sleep(CHECK_PERIOD_S)

    # --- what `squall status` shows ---------------------------------------------------------------
    def _save_counts(self) -> None:
        path = self.home / "run" / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "components": {
            w.name: {"restarts": w.restarts, "last_death": w.last_death,
                     "restarting": w.restart_at is not None} for w in self.watched}}, indent=2))
        tmp.replace(path)

    def _load_counts(self) -> None:
        for name, counts in read_counts(self.home).items():
            for w in self.watched:
                if w.name == name:
                    w.restarts, w.last_death = int(str(counts.get("restarts", 0))), str(counts.get("last_death", ""))


def read_counts(home: Path) -> dict[str, dict[str, object]]:
    """Each component's restart count and last death, as the supervisor last wrote them."""
    try:
        return dict(json.loads((home / "run" / STATE_FILE).read_text()).get("components", {}))
    except (OSError, ValueError):
        return {}


def _discard(_: object) -> None:
    return None


SUPERVISOR = ProcessSpec("supervisor", "deploy.supervisor", ())


def ensure_running(home: Path, plan: Plan) -> int:
    """Save the plan and start the supervisor, or make the running one re-read the plan."""
    plan.save(home)
    pid = running_pid(home)
    if pid is not None:
        os.kill(pid, signal.SIGHUP)
        return pid
    return ProcessTable(home).spawn(ProcessSpec(SUPERVISOR.name, SUPERVISOR.module, ("--home", str(home)))).pid


def running_pid(home: Path) -> int | None:
    pid = ProcessTable(home).pid(SUPERVISOR.name)
    return pid if pid is not None and runs_module(pid, SUPERVISOR.module) else None


def stop(home: Path, timeout_s: float = 15.0) -> bool:
    """Stop the supervisor (never its components); True if it was running."""
    table = ProcessTable(home)
    if running_pid(home) is None:
        table.pid_file(SUPERVISOR.name).unlink(missing_ok=True)
        return False
    return table.stop(SUPERVISOR.name, timeout_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.supervisor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    home = args.home.resolve()
    reload_requested = False

    def on_sighup(*_: object) -> None:
        nonlocal reload_requested
        reload_requested = True

    def reload() -> bool:
        nonlocal reload_requested
        asked, reload_requested = reload_requested, False
        return asked

    def on_sigterm(*_: object) -> None:
        raise SystemExit(0)  # at once, even inside a start: squall down stops what it left behind

    signal.signal(signal.SIGHUP, on_sighup)
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigterm)
    supervisor = Supervisor(home, Plan.load(home))
    try:
        supervisor.run(stopping=lambda: False, reload=reload)  # SIGTERM ends it
    finally:
        log.info("supervisor stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

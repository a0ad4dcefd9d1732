"""The agent's durable memory: what it was assigned, started, completed and reported.

An append-only JSON-lines file under <home>/instances/<instance>/journal.jsonl, fsynced on every
write, so that after a crash the agent knows, for every attempt it ever accepted:
  assigned   it must run it (unless a kill came first);
  started    it may have containers running: re-attach, or report worker_crashed;
  completed  the MJC is decided (stored whole, so a re-send is byte-for-byte the same event);
  reported   the MJC is in the log;
  cleaned    its containers and scratch are gone.
It also holds the next offset of the assignment partition to read. On open, finished entries
(reported and cleaned) are dropped by rewriting the file (atomic rename), so it stays small.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from events.catalog import AttemptAssigned, JobAttemptCompleted


class JournalCorrupt(Exception):
    """A journal line is unreadable; the message names the file and line (fix or move the file)."""


@dataclass
class AttemptRecord:
    assignment: AttemptAssigned
    offset: int
    started_at: int | None = None
    kill_requested: bool = False
    completed: JobAttemptCompleted | None = None
    reported: bool = False
    cleaned: bool = False

    @property
    def finished(self) -> bool:
        return self.reported and self.cleaned


def attempt_key(batch_id: int, job_id: int, attempt_id: str) -> str:
    return f"{batch_id}-{job_id}-{attempt_id}"


def key_of(a: AttemptAssigned) -> str:
    return attempt_key(a.batch_id, a.job_id, a.attempt_id)


class Journal:
    def __init__(self, directory: Path) -> None:
        self.path = directory / "journal.jsonl"
        self.next_offset = 0
        self.attempts: dict[str, AttemptRecord] = {}
        # attempts finished before a compaction: a re-sent assignment for one of them (the resolver
        # re-sends unstarted-looking attempts after its own restart) must never run it again
        self.done: set[str] = set()
        directory.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._load()
            self._compact()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 -- open for the agent's life

    # reading ----------------------------------------------------------------------------------
    def _load(self) -> None:
        with open(self.path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    self._apply(json.loads(line))
                except json.JSONDecodeError as exc:
                    if f.read().strip():  # a torn last line (crash mid-write) is expected; elsewhere not
                        raise JournalCorrupt(f"{self.path}:{n}: {exc}") from exc
                except (KeyError, TypeError, ValueError) as exc:
                    raise JournalCorrupt(f"{self.path}:{n}: {exc!r}") from exc

    def _apply(self, rec: dict[str, Any]) -> None:
        kind = rec["t"]
        if kind == "offset":
            self.next_offset = max(self.next_offset, int(rec["next"]))
            return
        if kind == "assigned":
            a = AttemptAssigned.from_avro(rec["assignment"])
            self.attempts.setdefault(key_of(a), AttemptRecord(assignment=a, offset=int(rec["offset"])))
            self.next_offset = max(self.next_offset, int(rec["offset"]) + 1)
            return
        if kind == "done":
            self.done.add(rec["key"])
            return
        entry = self.attempts.get(rec["key"])
        if entry is None:
            return  # compacted away already
        if kind == "started":
            entry.started_at = int(rec["started_at"])
        elif kind == "kill":
            entry.kill_requested = True
        elif kind == "completed":
            entry.completed = JobAttemptCompleted.from_avro(rec["mjc"])
        elif kind == "reported":
            entry.reported = True
        elif kind == "cleaned":
            entry.cleaned = True
        else:
            raise ValueError(f"unknown record type {kind!r}")

    def _compact(self) -> None:
        live = [r for r in self.attempts.values() if not r.finished]
        self.done |= {k for k, r in self.attempts.items() if r.finished}
        self.attempts = {key_of(r.assignment): r for r in live}
        lines: list[dict[str, Any]] = [{"t": "offset", "next": self.next_offset}]
        lines += [{"t": "done", "key": k} for k in sorted(self.done)]
        for r in live:
            k = key_of(r.assignment)
            lines.append({"t": "assigned", "offset": r.offset, "assignment": r.assignment.to_avro()})
            if r.started_at is not None:
                lines.append({"t": "started", "key": k, "started_at": r.started_at})
            if r.kill_requested:
                lines.append({"t": "kill", "key": k})
            if r.completed is not None:
                lines.append({"t": "completed", "key": k, "mjc": r.completed.to_avro()})
            if r.reported:
                lines.append({"t": "reported", "key": k})
            if r.cleaned:
                lines.append({"t": "cleaned", "key": k})
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(line) + "\n" for line in lines)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)

    # writing ----------------------------------------------------------------------------------
    def _write(self, records: list[dict[str, Any]]) -> None:
        self._file.write("".join(json.dumps(r) + "\n" for r in records))
        self._file.flush()
        os.fsync(self._file.fileno())
        for r in records:
            self._apply(r)

    def record_read(self, assignments: list[tuple[int, AttemptAssigned]], kills: list[str],
                    next_offset: int) -> None:
        """One durable write for a batch of log records: new assignments, kills, and the offset."""
        records: list[dict[str, Any]] = []
        known = set(self.attempts) | self.done
        for off, a in assignments:
            if key_of(a) not in known:  # a re-derived duplicate of an assignment is the same attempt
                known.add(key_of(a))
                records.append({"t": "assigned", "offset": off, "assignment": a.to_avro()})
        records += [{"t": "kill", "key": k} for k in kills if k in known]
        records.append({"t": "offset", "next": next_offset})
        self._write(records)

    def started(self, key: str, started_at: int) -> None:
        self._write([{"t": "started", "key": key, "started_at": started_at}])

    def completed(self, key: str, mjc: JobAttemptCompleted) -> None:
        self._write([{"t": "completed", "key": key, "mjc": mjc.to_avro()}])

    def reported(self, key: str) -> None:
        self._write([{"t": "reported", "key": key}])

    def cleaned(self, key: str) -> None:
        self._write([{"t": "cleaned", "key": key}])

    def close(self) -> None:
        self._file.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

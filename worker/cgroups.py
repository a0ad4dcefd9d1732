"""A container's cgroup, read for resource usage, OOM kills and "have its processes exited", on
cgroup v1 (and hybrid hosts, as this project's machines are) or v2 (Debian 12 and GCE images).

Parsing is pure (`parse_v1`, `parse_v2` take the files' text) and reading is separate
(`ContainerCgroup`), so the v2 layout is tested against recorded v2 files as well as against the
unified hierarchy of a hybrid host.

Where podman puts a container's cgroup (`cgroup_dirs`):
  v1: one hierarchy per controller: /sys/fs/cgroup/<controller>/<parent>/libpod-<id>
  v2: one hierarchy, when /sys/fs/cgroup/cgroup.controllers exists: /sys/fs/cgroup/<parent>/libpod-<id>
      with the cgroupfs manager, /sys/fs/cgroup/machine.slice/libpod-<id>.scope with systemd (whose
      processes may sit in a `container` child: the files read here are hierarchical).
Files read, v1 -> v2: cpuacct.usage -> cpu.stat usage_usec; memory.usage_in_bytes -> memory.current;
memory.max_usage_in_bytes -> memory.peak (kernel 5.19+); memory.oom_control oom_kill -> memory.events
oom_kill; pids.current; blkio.throttle.io_service_bytes -> io.stat; cgroup.procs -> cgroup.events populated.
Limits need nothing here: podman writes memory.max / cpu.max / pids.max on v2 from the same spec.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# the parents podman uses: cgroupfs manager (this project's setup) and systemd manager (distribution default)
PARENTS = ("libpod_parent/libpod-{id}", "machine.slice/libpod-{id}.scope")

V1_FILES = ("cpuacct/cpuacct.usage", "memory/memory.usage_in_bytes", "memory/memory.max_usage_in_bytes",
            "memory/memory.oom_control", "pids/pids.current", "blkio/blkio.throttle.io_service_bytes")
V2_FILES = ("cpu.stat", "memory.current", "memory.peak", "memory.events", "pids.current", "io.stat")


@dataclass(frozen=True, slots=True)
class CgroupStats:
    """One reading; None where the file is absent (controller off, older kernel)."""

    cpu_usage_ns: int | None = None
    memory_bytes: int | None = None
    memory_peak_bytes: int | None = None
    oom_kills: int | None = None
    pids: int | None = None
    io_read_bytes: int | None = None
    io_write_bytes: int | None = None


# pure parsing ---------------------------------------------------------------------------------
def parse_int(text: str | None) -> int | None:
    """A single-value file ("123\\n"); None for "max", empty or garbage."""
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def parse_keyed(text: str | None) -> dict[str, int]:
    """Flat keyed files: "key value" per line (cpu.stat, memory.events, memory.oom_control)."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def parse_io_stat(text: str | None) -> tuple[int, int] | None:
    """v2 io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N ..." per device; summed over devices."""
    if not text:
        return None
    read = write = 0
    for line in text.splitlines():
        for field in line.split()[1:]:
            key, _, value = field.partition("=")
            if key == "rbytes":
                read += int(value)
            elif key == "wbytes":
                write += int(value)
    return read, write


def parse_blkio(text: str | None) -> tuple[int, int] | None:
    """v1 blkio.throttle.io_service_bytes: "MAJ:MIN Read N" / "... Write N" lines, then "Total N"."""
    if not text:
        return None
    read = write = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in ("Read", "Write"):
            if parts[1] == "Read":
                read += int(parts[2])
            else:
                write += int(parts[2])
    return read, write


def parse_v1(files: Mapping[str, str | None]) -> CgroupStats:
    """files: "controller/file" -> text (absent or None when unreadable)."""
    oom = parse_keyed(files.get("memory/memory.oom_control"))
    io = parse_blkio(files.get("blkio/blkio.throttle.io_service_bytes"))
    return CgroupStats(
        cpu_usage_ns=parse_int(files.get("cpuacct/cpuacct.usage")),
        memory_bytes=parse_int(files.get("memory/memory.usage_in_bytes")),
        memory_peak_bytes=parse_int(files.get("memory/memory.max_usage_in_bytes")),
        oom_kills=oom.get("oom_kill"),
        pids=parse_int(files.get("pids/pids.current")),
        io_read_bytes=io[0] if io else None, io_write_bytes=io[1] if io else None)


def parse_v2(files: Mapping[str, str | None]) -> CgroupStats:
    """files: v2 file name -> text (absent or None when unreadable)."""
    cpu = parse_keyed(files.get("cpu.stat"))
    events = parse_keyed(files.get("memory.events"))
    io = parse_io_stat(files.get("io.stat"))
    usage_usec = cpu.get("usage_usec")
    return CgroupStats(
        cpu_usage_ns=usage_usec * 1000 if usage_usec is not None else None,
        memory_bytes=parse_int(files.get("memory.current")),
        memory_peak_bytes=parse_int(files.get("memory.peak")),
        oom_kills=events.get("oom_kill"),
        pids=parse_int(files.get("pids.current")),
        io_read_bytes=io[0] if io else None, io_write_bytes=io[1] if io else None)


def populated_v2(events_text: str | None) -> bool | None:
    """cgroup.events "populated 0|1": whether any process is left in the cgroup or below it."""
    value = parse_keyed(events_text).get("populated")
    return None if value is None else value == 1


def is_unified(root: Path = CGROUP_ROOT) -> bool:
    """A pure v2 host: the root of the cgroup mount is the unified hierarchy."""
    return (root / "cgroup.controllers").exists()


def cgroup_dirs(container_id: str, unified: bool, root: Path = CGROUP_ROOT) -> list[Path]:
    """Candidate directories of the container's cgroup; for v1 they are relative to a controller
    (prefix them with root/<controller>), for v2 absolute."""
    rels = [p.format(id=container_id) for p in PARENTS]
    return [root / rel for rel in rels] if unified else [Path(rel) for rel in rels]


# reading ---------------------------------------------------------------------------------------
def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, ValueError):
        return None


class ContainerCgroup:
    """The cgroup of one container, found once (by podman's naming) and then read directly."""

    def __init__(self, container_id: str, root: Path = CGROUP_ROOT, unified: bool | None = None) -> None:
        self.container_id = container_id
        self.root = root
        self.unified = is_unified(root) if unified is None else unified
        self._dir: Path | None = None

    def _locate(self) -> Path | None:
        if self._dir is not None:
            return self._dir
        for candidate in cgroup_dirs(self.container_id, self.unified, self.root):
            probe = candidate / "cgroup.events" if self.unified else self.root / "memory" / candidate
            if probe.exists():
                self._dir = candidate
                return candidate
        return None

    def _files(self, names: Iterable[str]) -> dict[str, str | None]:
        base = self._locate()
        if base is None:
            return {}
        if self.unified:
            return {name: _read(base / name) for name in names}
        return {name: _read(self.root / name.split("/", 1)[0] / base / name.split("/", 1)[1]) for name in names}

    def stats(self, names: Iterable[str] | None = None) -> CgroupStats | None:
        """A reading of the given files (default: all), or None once the cgroup is gone."""
        if self.unified:
            files = self._files(V2_FILES if names is None else names)
            return parse_v2(files) if any(v is not None for v in files.values()) else None
        files = self._files(V1_FILES if names is None else names)
        return parse_v1(files) if any(v is not None for v in files.values()) else None

    def usage(self) -> CgroupStats | None:
        """The cheap subset sampled while a job runs: cpu, memory and its peak."""
        if self.unified:
            return self.stats(("cpu.stat", "memory.current", "memory.peak"))
        return self.stats(("cpuacct/cpuacct.usage", "memory/memory.usage_in_bytes",
                           "memory/memory.max_usage_in_bytes"))

    def oom_kills(self) -> int | None:
        stats = self.stats(("memory.events",) if self.unified else ("memory/memory.oom_control",))
        return stats.oom_kills if stats else None

    def is_empty(self) -> bool | None:
        """True once no process is left; None when it cannot tell (no such cgroup found)."""
        base = self._locate()
        if base is None:
            return None
        if self.unified:
            populated = populated_v2(_read(base / "cgroup.events"))
            return None if populated is None else not populated
        procs = _read(self.root / "pids" / base / "cgroup.procs")
        return None if procs is None else not procs.strip()

"""The file system a worker host sees: its own disk, the machine's software read-only, nothing else.

A worker host (deploy/worker_hosts.py) runs in a mount namespace whose root is assembled here and
entered with pivot_root, so nothing of the machine is reachable by path except what is listed:

    /usr /bin /sbin /lib* ...    the machine's system software, read-only (podman, crun, nft, java)
    /etc /var /root /tmp         the host's own disk: a directory on the machine (`disk`), written
                                 by the worker as a VM writes its disk (/etc starts as a copy of the
                                 machine's, see prepare_disk; /var holds its podman storage)
    /run, /dev/shm               fresh tmpfs; /dev a tmpfs with the few device nodes a worker uses
                                 (null, zero, random, fuse, tun, loop devices)
    /proc, /sys                  of its own PID and network namespaces; /sys/fs/cgroup is the machine's
    given binds                  what the worker must have: its state directory, the squall code and
                                 its Python, the machine's image store (read-only), the user-namespace
                                 leases (shared: one kernel, one id space)

`plan_mounts` is pure (tested without root); `assemble` performs it inside the new namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

from deploy import nsutil

SYSTEM_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr")
DISK_DIRS = ("etc", "var", "root", "tmp")
CHAR_DEVICES = ("null", "zero", "full", "random", "urandom", "tty", "fuse", "net/tun", "loop-control")
LOOP_DEVICES = 1024  # block nodes loop0..: the kernel hands out free ones by number (LOOP_CTL_GET_FREE)
PUT_OLD = ".machine"


@dataclass(frozen=True)
class Bind:
    source: str  # a path on the machine
    target: str  # where the worker host sees it
    read_only: bool = True
    recursive: bool = False


@dataclass(frozen=True)
class HostRoot:
    disk: str  # the host's own disk on the machine: etc/ var/ root/ tmp/
    hostname: str
    binds: tuple[Bind, ...] = field(default_factory=tuple)
    machine_root: str = "/"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> HostRoot:
        d = json.loads(text)
        return cls(d["disk"], d["hostname"], tuple(Bind(**b) for b in d["binds"]), d.get("machine_root", "/"))


@dataclass(frozen=True)
class Step:
    """One thing to do under the new root: a bind, a file system, a symlink or a directory."""

    kind: str  # bind | tmpfs | proc | sysfs | devpts | mqueue | symlink
    target: str  # inside the new root
    source: str = ""  # bind: machine path; symlink: the link's text
    read_only: bool = False
    recursive: bool = False
    options: str = ""


def plan_mounts(root: HostRoot, machine_entries: dict[str, str | None]) -> list[Step]:
    """The steps that build the host's root, parents before children. `machine_entries` maps each
    system directory the machine has to its symlink text (None for a real directory)."""
    steps: list[Step] = []
    for name in SYSTEM_DIRS:
        if name not in machine_entries:
            continue
        link = machine_entries[name]
        if link is not None:  # merged /usr: /bin -> usr/bin
            steps.append(Step("symlink", f"/{name}", source=link))
        else:
            steps.append(Step("bind", f"/{name}", source=os.path.join(root.machine_root, name), read_only=True))
    for name in DISK_DIRS:
        steps.append(Step("bind", f"/{name}", source=os.path.join(root.disk, name)))
    steps += [Step("tmpfs", "/run", options="mode=755,size=256m"),
              Step("tmpfs", "/dev", options="mode=755,size=1m"),
              Step("devpts", "/dev/pts", options="newinstance,ptmxmode=0666,mode=620"),
              Step("tmpfs", "/dev/shm", options="mode=1777,size=64m"),
              Step("mqueue", "/dev/mqueue"),
              Step("proc", "/proc"),
              Step("sysfs", "/sys", read_only=False),
              Step("bind", "/sys/fs/cgroup", source=os.path.join(root.machine_root, "sys/fs/cgroup"), recursive=True)]
    for b in sorted(root.binds, key=lambda b: (b.target.count("/"), b.target)):
        steps.append(Step("bind", b.target, source=b.source, read_only=b.read_only, recursive=b.recursive))
    return steps


def machine_entries(machine_root: str = "/") -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in SYSTEM_DIRS:
        path = os.path.join(machine_root, name)
        if os.path.islink(path):
            out[name] = os.readlink(path)
        elif os.path.isdir(path):
            out[name] = None
    return out


def assemble(root: HostRoot, new_root: str) -> None:
    """Build the root at `new_root` (an empty directory) and pivot into it. Runs in the host's init,
    inside fresh mount, PID and network namespaces, before anything else does."""
    nsutil.mount("none", "/", None, nsutil.MS_REC | nsutil.MS_PRIVATE)  # nothing propagates back
    nsutil.mount("tmpfs", new_root, "tmpfs", nsutil.MS_NOSUID | nsutil.MS_NODEV, "mode=755,size=16m")
    for step in plan_mounts(root, machine_entries(root.machine_root)):
        _perform(step, new_root + step.target)
    _populate_dev(new_root + "/dev")
    os.makedirs(new_root + "/" + PUT_OLD, exist_ok=True)
    os.chdir(new_root)
    nsutil.pivot_root(".", PUT_OLD)
    os.chdir("/")
    nsutil.umount("/" + PUT_OLD, nsutil.MNT_DETACH)  # the machine's tree is out of sight from here on
    os.rmdir("/" + PUT_OLD)
    # the skeleton itself is fixed: writes go to the disk, /run or /tmp
    nsutil.mount("none", "/", None, nsutil.MS_BIND | nsutil.MS_REMOUNT | nsutil.MS_RDONLY | nsutil.MS_NOSUID
                 | nsutil.MS_NODEV)
    nsutil.sethostname(root.hostname)


def _mountpoint(path: str, like: str | None) -> None:
    if like is not None and os.path.exists(like) and not os.path.isdir(like):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            with open(path, "a"):
                pass
    else:
        os.makedirs(path, exist_ok=True)


def _perform(step: Step, target: str) -> None:
    if step.kind == "symlink":
        os.symlink(step.source, target)
        return
    _mountpoint(target, step.source if step.kind == "bind" else None)
    if step.kind == "bind":
        nsutil.bind(step.source, target, read_only=step.read_only, recursive=step.recursive,
                    flags=nsutil.MS_NOSUID if step.read_only else 0)
    elif step.kind == "tmpfs":
        nsutil.mount("tmpfs", target, "tmpfs", nsutil.MS_NOSUID, step.options)
    elif step.kind == "devpts":
        nsutil.mount("devpts", target, "devpts", nsutil.MS_NOSUID | nsutil.MS_NOEXEC, step.options)
    elif step.kind == "mqueue":
        nsutil.mount("mqueue", target, "mqueue", nsutil.MS_NOSUID | nsutil.MS_NODEV | nsutil.MS_NOEXEC)
    elif step.kind == "proc":
        nsutil.mount("proc", target, "proc", nsutil.MS_NOSUID | nsutil.MS_NODEV | nsutil.MS_NOEXEC)
    elif step.kind == "sysfs":
        nsutil.mount("sysfs", target, "sysfs", nsutil.MS_NOSUID | nsutil.MS_NODEV | nsutil.MS_NOEXEC)
    else:
        raise ValueError(f"unknown step {step.kind!r}")


def _populate_dev(dev: str) -> None:
    """The device nodes a worker uses (same numbers as the machine's), and the usual links."""
    for name in CHAR_DEVICES:
        machine = os.path.join("/dev", name)
        try:
            st = os.stat(machine)
        except FileNotFoundError:
            continue
        path = os.path.join(dev, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mknod(path, stat.S_IMODE(st.st_mode) | stat.S_IFCHR, st.st_rdev)
        # mknod applies the umask: /dev/null would be 0644, and a job's runtime in a user namespace
        # (crun opening it for the container's stdio) is refused it ("failed open()ing /dev/null")
        os.chmod(path, stat.S_IMODE(st.st_mode))
    for n in range(LOOP_DEVICES):
        loop = os.path.join(dev, f"loop{n}")
        os.mknod(loop, 0o660 | stat.S_IFBLK, os.makedev(7, n))
        os.chmod(loop, 0o660)
    for name, link in (("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                       ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(link, os.path.join(dev, name))


def prepare_disk(disk: Path, machine_etc: Path = Path("/etc")) -> None:
    """A new host's disk: /etc copied from the machine (minus its podman networks: the host makes
    its own), empty /var, /root and /tmp. An existing disk is left as it is (a restart)."""
    if (disk / "etc").is_dir():
        return
    disk.mkdir(parents=True, exist_ok=True)
    tmp_etc = disk / "etc.partial"
    shutil.rmtree(tmp_etc, ignore_errors=True)
    shutil.copytree(machine_etc, tmp_etc, symlinks=True,
                    ignore=lambda d, names: names if Path(d) == machine_etc / "containers" / "networks" else [],
                    ignore_dangling_symlinks=True)
    (tmp_etc / "containers" / "networks").mkdir(parents=True, exist_ok=True)
    tmp_etc.rename(disk / "etc")
    for sub in ("var/tmp", "var/lib", "var/cache", "var/log", "root"):
        (disk / sub).mkdir(parents=True, exist_ok=True)
    for link, to in (("var/run", "/run"), ("var/lock", "/run/lock")):
        if not (disk / link).is_symlink():
            (disk / link).symlink_to(to)
    (disk / "tmp").mkdir(exist_ok=True)
    os.chmod(disk / "tmp", 0o1777)
    os.chmod(disk / "var" / "tmp", 0o1777)
    os.chmod(disk / "root", 0o700)

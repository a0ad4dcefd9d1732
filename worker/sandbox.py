"""What a job's container may do: the sandbox policy, and the podman create request that applies it.

Every container the worker starts (jobs, and the warm JVMs that run JVM jobs) gets:
- a user namespace: uid/gid 0..65535 inside are a host range of its own (worker/userns.py), so root
  in the job is nobody on the host;
- its root filesystem assembled by the worker (worker/rootfs.py): the image read-only, writes
  bounded by the attempt's scratch quota (or a tmpfs);
- bind mounts (/io, the JVM's directories) idmapped, so files the job writes as its root are owned
  by host root in /io, as the input and output steps on the host expect, and the reverse;
- only the capabilities in CAPABILITIES, and no-new-privileges (setuid binaries and file
  capabilities grant nothing);
- podman's default seccomp profile and masked /proc paths, which stay on.

`create_body` is pure: image config, lease and mounts in, the libpod create JSON out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from worker.runtime import ContainerSpec, ContainerSpecInvalid
from worker.userns import IdMapping

CPU_PERIOD_US = 100_000

# Capabilities a job keeps (inside its user namespace, over its own files only), and why. What
# jobs do as root in their image: install packages (apt, pip, conda), unpack archives, run tools
# that switch to another user. Dropped from podman's defaults: NET_BIND_SERVICE (a batch job
# serves no privileged port), SETFCAP and SETPCAP (granting capabilities: nothing to grant under
# no-new-privileges), SYS_CHROOT; NET_RAW, SYS_ADMIN, ... were never given.
CAPABILITIES: tuple[tuple[str, str], ...] = (
    ("CAP_CHOWN", "package managers and tar set the owners of the files they install"),
    ("CAP_DAC_OVERRIDE", "root reads and writes its files whatever their mode, as scripts expect of root"),
    ("CAP_FOWNER", "chmod / utime on files of other users, e.g. when unpacking archives"),
    ("CAP_FSETID", "keep setuid/setgid bits when installing or copying files"),
    ("CAP_KILL", "signal its own processes that run as another user"),
    ("CAP_SETGID", "switch group, as apt (its _apt sandbox), su and service wrappers do"),
    ("CAP_SETUID", "switch user, for the same reasons"),
)
CAPABILITY_BITS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5,
                   "CAP_SETGID": 6, "CAP_SETUID": 7}


def capability_mask() -> int:
    """The CapEff/CapBnd value a job's processes have, as /proc/self/status shows it."""
    return sum(1 << CAPABILITY_BITS[name] for name, _ in CAPABILITIES)


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """What the worker needs from `podman image inspect`: the layers and the run config."""

    layers: tuple[str, ...]  # top first, as overlay lowerdirs
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""

    @classmethod
    def from_inspect(cls, attrs: Mapping[str, Any]) -> ImageConfig:
        driver = attrs.get("GraphDriver") or {}
        data = driver.get("Data") or {}
        if driver.get("Name") == "overlay" and data.get("UpperDir"):
            layers = [data["UpperDir"], *[d for d in (data.get("LowerDir") or "").split(":") if d]]
        elif data.get("Dir"):  # vfs: one directory holds the whole tree
            layers = [data["Dir"]]
        else:
            raise ValueError(f"image storage driver {driver.get('Name')!r} is not supported (overlay or vfs)")
        config = attrs.get("Config") or {}
        return cls(layers=tuple(layers), env=tuple(config.get("Env") or ()),
                   entrypoint=tuple(config.get("Entrypoint") or ()), cmd=tuple(config.get("Cmd") or ()),
                   working_dir=config.get("WorkingDir") or "", user=config.get("User") or "")


def argv_of(spec: ContainerSpec, image: ImageConfig) -> tuple[list[str], list[str]]:
    """(entrypoint, command) with Docker's rule: the image's entrypoint, then the job's command or
    the image's CMD. Refused (the job's fault) when there is nothing to run."""
    command = list(spec.command) or list(image.cmd)
    if not image.entrypoint and not command:
        raise ContainerSpecInvalid(f"no command or entrypoint provided, and no CMD or ENTRYPOINT in image "
                                   f"{spec.image!r}")
    return list(image.entrypoint), command


def env_of(spec: ContainerSpec, image: ImageConfig) -> dict[str, str]:
    """The image's environment, then the job's (which wins), as `podman run IMAGE` would give."""
    env: dict[str, str] = {}
    for entry in image.env:
        key, sep, value = entry.partition("=")
        if sep:
            env[key] = value
    env.update(spec.env)
    return env


def resource_limits(spec: ContainerSpec) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    if spec.cpu_mcpu:
        limits["cpu"] = {"period": CPU_PERIOD_US, "quota": max(1000, spec.cpu_mcpu * CPU_PERIOD_US // 1000)}
    if spec.memory_bytes:
        limits["memory"] = {"limit": spec.memory_bytes, "swap": spec.memory_bytes}  # no swap: the limit is hard
    if spec.pids_limit:
        limits["pids"] = {"limit": spec.pids_limit}
    return limits


def create_body(spec: ContainerSpec, image: ImageConfig, mapping: IdMapping, rootfs: str, network: str | None,
                mount_options: Sequence[str] = ("idmap",)) -> dict[str, Any]:
    """The libpod `POST /containers/create` body (podman's SpecGenerator) for a sandboxed job;
    network is a podman network's name, or None for no network at all."""
    entrypoint, command = argv_of(spec, image)
    id_map = [{"container_id": 0, "host_id": mapping.uid_start, "size": mapping.size}]
    gid_map = [{"container_id": 0, "host_id": mapping.gid_start, "size": mapping.size}]
    body: dict[str, Any] = {
        "name": spec.name,
        "rootfs": rootfs,
        "entrypoint": entrypoint,
        "command": command,
        "env": env_of(spec, image),
        "work_dir": spec.workdir or image.working_dir or "/",
        # as `podman run IMAGE` does for the image's own WORKDIR (a job's own must exist)
        "create_working_dir": not spec.workdir and bool(image.working_dir),
        "labels": dict(spec.labels),
        "userns": {"nsmode": "private"},
        "idmappings": {"HostUIDMapping": False, "HostGIDMapping": False, "UIDMap": id_map, "GIDMap": gid_map},
        "cap_drop": ["ALL"],
        "cap_add": [name for name, _ in CAPABILITIES],
        "no_new_privileges": True,
        "mounts": [{"type": "bind", "source": m.source, "destination": m.target,
                    "options": ["rbind", *mount_options, *(["ro"] if m.read_only else [])]}
                   for m in spec.mounts],
        "resource_limits": resource_limits(spec),
        "stop_timeout": 1,
    }
    if image.user:
        body["user"] = image.user
    if network is None:
        body["netns"] = {"nsmode": "none"}
    else:
        body["netns"] = {"nsmode": "bridge"}
        body["networks"] = {network: {}}
    return body

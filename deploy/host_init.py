"""A worker host's init, and the way into the host.

    python -m deploy.host_init init --netns NAME --root ROOT.json --new-root DIR --log FILE
        Joins the network namespace NAME, makes new mount, UTS, IPC and PID namespaces, builds the
        host's root (deploy/host_root.py) and pivots into it, then lives on as the host's PID 1:
        it reaps orphans (the podman service and conmon outlive the agent that started them) and,
        on SIGTERM, asks every process of the host to stop and exits (the kernel kills what is
        left). SIGKILL is the host losing power: everything in it dies at once. The first line on
        stdout is {"pid": N} (N as the machine sees it) or {"error": "..."}; then it detaches.

    python -m deploy.host_init enter --netns NAME -- COMMAND...
        Runs COMMAND inside the host (all five namespaces of its init) with a clean environment,
        and stays outside as its shadow: signals it receives go to COMMAND, it exits as COMMAND
        does, and if it is killed COMMAND is killed with it (PR_SET_PDEATHSIG). So whoever started
        it (the local provider) can treat it as the agent itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

from deploy import nsutil
from deploy.host_root import HostRoot, assemble

NAMESPACES = (("ipc", nsutil.CLONE_NEWIPC), ("uts", nsutil.CLONE_NEWUTS), ("net", nsutil.CLONE_NEWNET),
              ("pid", nsutil.CLONE_NEWPID), ("mnt", nsutil.CLONE_NEWNS))  # mnt last: it changes our root
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHUTDOWN_GRACE_S = 10.0
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def host_environment() -> dict[str, str]:
    """What a process of the host starts with: nothing of the machine's environment."""
    return {"PATH": HOST_PATH, "HOME": "/root", "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}


# --- init ------------------------------------------------------------------------------------------
def init(netns: str, root: HostRoot, new_root: str, log_file: str) -> int:
    with open(f"/run/netns/{netns}", "rb") as ns:
        nsutil.setns(ns.fileno(), nsutil.CLONE_NEWNET)
    nsutil.unshare(nsutil.CLONE_NEWNS | nsutil.CLONE_NEWUTS | nsutil.CLONE_NEWIPC | nsutil.CLONE_NEWPID)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # PID 1 of the host
        os.close(read_end)
        _become_init(root, new_root, log_file, write_end)
        os._exit(0)  # not reached
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read().decode(errors="replace").strip()
    if answer == "ready":
        print(json.dumps({"pid": pid}), flush=True)
        return 0
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    print(json.dumps({"error": answer or "the host's init died while starting"}), flush=True)
    return 1


def _become_init(root: HostRoot, new_root: str, log_file: str, ready_fd: int) -> None:
    try:
        log = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.setsid()
        assemble(root, new_root)
    except BaseException as exc:  # noqa: BLE001 - reported to the creator, then this host is gone
        os.write(ready_fd, f"building the host's root failed: {exc}".encode())
        os._exit(1)
    os.write(ready_fd, b"ready")
    os.close(ready_fd)
    _reap_forever()


def _reap_forever() -> None:
    watched = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    while True:
        sig = signal.sigwait(watched)
        _reap()
        if sig in (signal.SIGTERM, signal.SIGINT):
            _shut_down()
            os._exit(0)


def _reap() -> int:
    """Collect every exited child; returns how many children are left (-1: none at all)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return -1
        if pid == 0:
            return 1


def _shut_down() -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGTERM)  # from PID 1: every process of the host but itself
    deadline = time.monotonic() + SHUTDOWN_GRACE_S
    while time.monotonic() < deadline and _reap() != -1:
        time.sleep(0.05)


# --- enter -----------------------------------------------------------------------------------------
def enter(init_pid: int, init_start: str, argv: list[str]) -> int:
    from deploy.fleet_lan import process_start_time

    fds = []
    for name, kind in NAMESPACES:
        fds.append((os.open(f"/proc/{init_pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), kind))
    if process_start_time(init_pid) != init_start:  # checked after opening: the fds are of that process
        print(f"deploy.host_init: the host's init (pid {init_pid}) is gone", file=sys.stderr)
        return 3
    for fd, kind in fds:
        nsutil.setns(fd, kind)
        os.close(fd)
    child = os.fork()
    if child == 0:
        try:
            nsutil.set_parent_death_signal(signal.SIGKILL)
            if os.getppid() != 0:  # our parent (outside this PID namespace) already died
                os._exit(1)
            os.chdir("/")
            os.execvpe(argv[0], argv, host_environment())
        except BaseException as exc:  # noqa: BLE001
            print(f"deploy.host_init: cannot run {argv[0]} in the host: {exc}", file=sys.stderr)
            os._exit(127)
    for sig in FORWARDED:
        signal.signal(sig, lambda s, _f: _forward(child, s))
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            return 1
    if os.WIFSIGNALED(status):
        died_of = os.WTERMSIG(status)
        signal.signal(died_of, signal.SIG_DFL)
        os.kill(os.getpid(), died_of)  # die the same way, so our parent sees why
        return 128 + died_of
    return os.WEXITSTATUS(status)


def _forward(child: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(child, sig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deploy.host_init", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("init")
    i.add_argument("--netns", required=True)
    i.add_argument("--root", type=Path, required=True, help="the host's root, as JSON (deploy/host_root.py)")
    i.add_argument("--new-root", required=True, help="an empty directory to build it in")
    i.add_argument("--log", required=True)
    e = sub.add_parser("enter")
    e.add_argument("--netns", required=True, help="the host (its record says which process is its init)")
    e.add_argument("argv", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if args.command == "init":
        return init(args.netns, HostRoot.from_json(args.root.read_text()), args.new_root, args.log)
    from deploy.worker_hosts import HostRegistry

    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        p.error("enter needs a command after --")
    record = HostRegistry().load(args.netns)
    if record is None or record.init_pid is None or record.init_start is None:
        print(f"deploy.host_init: no worker host {args.netns} on this machine", file=sys.stderr)
        return 3
    return enter(record.init_pid, record.init_start, command)


if __name__ == "__main__":
    sys.exit(main())

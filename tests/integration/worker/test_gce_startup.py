"""The GCE startup script, run for real on this machine against fakes of what a VM talks to.

No VM is available, so the script runs with SQUALL_ROOT (every path it writes lands in a throwaway
directory) against one local HTTP server that answers as the metadata server, Cloud Storage,
Secret Manager and the Compute API. Packages and podman's setup are skipped (this machine has
them). What runs is the script's own logic: metadata, the release download and sha256 check, the
pip install of the control plane's wheel, the credentials files, the agent joining the secured
broker over TLS with them, the agent's restart, and the VM deleting itself when the agent is done.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from deploy.kafka_acls import apply_acls, stack_acls
from deploy.release import DirectoryStore, GcsReleaseStore, Release, publish_release
from events.catalog import InstanceActivated
from events.codec import Codec
from events.kafka_log import KafkaEventLog
from events.topics import Topics
from services.providers.gce_startup import STARTUP_SCRIPT, WorkerBootstrap, worker_metadata
from tests.conftest import SecureKafka

TOKEN = "fake-vm-token"
PROJECT, ZONE = "proj", "us-central1-a"
SECRET = f"projects/{PROJECT}/secrets/squall-worker/versions/latest"


@dataclass
class FakeGoogle:
    """What the VM sees of Google: its metadata, a bucket, a secret, and the Compute API."""

    store_root: Path
    name: str
    attributes: dict[str, str] = field(default_factory=dict)
    secret: str = ""
    deleted: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    google: FakeGoogle

    def _send(self, code: int, body: bytes, kind: str = "text/plain") -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.google.refused.append(self.path)
            self._send(401, b"no token")
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        g, path = self.google, urlparse(self.path).path
        if path.startswith("/computeMetadata/v1/"):
            if self.headers.get("Metadata-Flavor") != "Google":
                self._send(403, b"Missing Metadata-Flavor:Google header")
                return
            key = path.removeprefix("/computeMetadata/v1/")
            values = {"instance/name": g.name, "instance/zone": f"projects/1234/zones/{ZONE}",
                      "project/project-id": PROJECT, "instance/network-interfaces/0/ip": "127.0.0.1",
                      "instance/service-accounts/default/token": json.dumps({"access_token": TOKEN})}
            if key.startswith("instance/attributes/"):
                value = g.attributes.get(key.removeprefix("instance/attributes/"))
            else:
                value = values.get(key)
            self._send(404, b"not found") if value is None else self._send(200, value.encode())
        elif path.startswith("/storage/v1/b/"):
            if self._authorized():
                bucket, _, obj = path.removeprefix("/storage/v1/b/").partition("/o/")
                target = g.store_root / bucket / unquote(obj)
                self._send(200, target.read_bytes(), "application/octet-stream") if target.is_file() \
                    else self._send(404, b"no such object")
        elif path == f"/v1/{SECRET}:access":
            if self._authorized():
                payload = {"payload": {"data": base64.b64encode(g.secret.encode()).decode()}}
                self._send(200, json.dumps(payload).encode(), "application/json")
        else:
            self._send(404, b"unknown")

    def do_DELETE(self) -> None:  # noqa: N802
        prefix = f"/compute/v1/projects/{PROJECT}/zones/{ZONE}/instances/"
        if not self.path.startswith(prefix):
            self._send(404, b"unknown")
        elif self._authorized():
            self.google.deleted.append(self.path.removeprefix(prefix))
            self._send(200, b"{}", "application/json")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def google(tmp_path: Path) -> Iterator[tuple[FakeGoogle, str]]:
    fake = FakeGoogle(store_root=tmp_path / "gcs", name=f"squall-standard-{uuid.uuid4().hex[:6]}")
    handler = type("BoundHandler", (Handler,), {"google": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Release, Path]:
    """This source tree's wheel, published to a fake bucket as the autoscaler publishes it."""
    root = tmp_path_factory.mktemp("gcs")
    return publish_release(DirectoryStore(root), "ctl"), root


def boot_metadata(fake: FakeGoogle, url: str, release: Release, kafka: SecureKafka, topics: Topics,
                  bootstrap: str, storage: str | None = None, system_bucket: str = "squall-system") -> None:
    worker = kafka.client("worker", tls=True)
    assert worker.ca_file is not None and worker.password is not None
    fake.secret = worker.password
    fake.attributes = worker_metadata(
        cores=1, memory_gib=2, storage_gib=5, pool="standard", region="us-central1", preemptible=True,
        kafka_bootstrap=bootstrap, topic_prefix=topics.prefix, job_private_for=None, system_bucket=system_bucket,
        bootstrap=WorkerBootstrap(wheel_url=release.url, wheel_sha256=release.sha256,
                                  kafka_ca_pem=Path(worker.ca_file).read_text(), kafka_password_secret=SECRET,
                                  pip_args="--no-deps",  # this machine's venv has the dependencies
                                  endpoints={"storage": storage or url, "secrets": url, "compute": url}))


def script_env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "SQUALL_ROOT": str(tmp_path / "vm"), "SQUALL_METADATA_URL": f"{url}/computeMetadata/v1",
            "SQUALL_SKIP_PACKAGES": "1", **extra}


def test_the_script_is_valid_bash_and_the_same_for_every_vm() -> None:
    subprocess.run(["bash", "-n"], input=STARTUP_SCRIPT, text=True, check=True)
    assert "squall-package" not in STARTUP_SCRIPT and "pip install squall" not in STARTUP_SCRIPT
    for needed in ("openjdk-17-jdk-headless", "podman", "setup.sh", "sha256sum --check", "kafka-credentials.json"):
        assert needed in STARTUP_SCRIPT, needed


@pytest.mark.kafka
def test_install_logic_against_fake_metadata(tmp_path: Path, google, release,  # type: ignore[no-untyped-def]
                                             secure_kafka: SecureKafka) -> None:
    fake, url = google
    published, store_root = release
    fake.store_root = store_root
    boot_metadata(fake, url, published, secure_kafka, Topics(prefix="boot."), secure_kafka.external_bootstrap)
    script = tmp_path / "startup.sh"
    script.write_text(STARTUP_SCRIPT)
    steps = ('source "$1"; read_settings; install_release; write_kafka_credentials; agent_command; '
             'printf "%s\\n" "${AGENT[@]}"')
    proc = subprocess.run(["bash", "-c", steps, "bash", str(script)], env=script_env(tmp_path, url),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    vm = tmp_path / "vm"

    # exactly the control plane's build: the same files as this source tree
    venv_python = vm / "opt" / "squall" / "bin" / "python"
    installed = subprocess.run([str(venv_python), "-c", "import events.topics, pathlib; "
                                "print(pathlib.Path(events.topics.__file__).read_text())"],
                               capture_output=True, text=True, check=True).stdout
    assert installed.rstrip("\n") == Path("events/topics.py").read_text().rstrip("\n")
    schemas = list((vm / "opt" / "squall").glob("lib/python3*/site-packages/schemas/*/v1.avsc"))
    assert len(schemas) == len(list(Path("schemas").glob("*/v1.avsc")))

    # credentials: root only, never on a command line, the password from Secret Manager
    etc = vm / "etc" / "squall"
    assert etc.stat().st_mode & 0o777 == 0o700
    assert (etc / "kafka-credentials.json").stat().st_mode & 0o777 == 0o600
    credentials = json.loads((etc / "kafka-credentials.json").read_text())
    worker = secure_kafka.client("worker", tls=True)
    assert credentials == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "username": "worker",
                           "password": worker.password, "ca_file": str(etc / "kafka-ca.crt")}
    assert "squall-kafka-password" not in fake.attributes  # only the secret's name travels in metadata
    assert fake.refused == []

    agent = proc.stdout.split("\n")
    assert agent[agent.index("--bootstrap") + 1] == secure_kafka.external_bootstrap
    assert agent[agent.index("--kafka-credentials") + 1] == str(etc / "kafka-credentials.json")
    assert agent[agent.index("--instance-name") + 1] == fake.name and "--preemptible" in agent


@pytest.mark.kafka
def test_a_wheel_that_does_not_match_its_sha256_is_not_installed(tmp_path: Path, google,  # type: ignore[no-untyped-def]
                                                                 release, secure_kafka: SecureKafka) -> None:
    fake, url = google
    published, store_root = release
    fake.store_root = tmp_path / "tampered"
    tampered = fake.store_root / published.url.removeprefix("gs://")
    tampered.parent.mkdir(parents=True)
    tampered.write_bytes(published.wheel.read_bytes() + b"\0")
    boot_metadata(fake, url, published, secure_kafka, Topics(prefix="boot."), secure_kafka.external_bootstrap)
    script = tmp_path / "startup.sh"
    script.write_text(STARTUP_SCRIPT)
    proc = subprocess.run(["bash", str(script)], env=script_env(tmp_path, url), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0 and "does not match sha256" in proc.stderr
    assert not (tmp_path / "vm" / "opt" / "squall" / "bin").exists()
    assert fake.deleted == []


@pytest.mark.kafka
@pytest.mark.podman
def test_the_vm_boots_its_worker_into_the_secured_fleet_and_deletes_itself_when_done(
        tmp_path: Path, google, secure_kafka: SecureKafka, podman_socket: Path,  # type: ignore[no-untyped-def]
        storage_endpoint: str) -> None:
    fake, url = google
    gcs = storage.Client(credentials=AnonymousCredentials(), project="squall",
                         client_options={"api_endpoint": storage_endpoint})
    release_bucket, system_bucket = (f"t-{uuid.uuid4().hex[:16]}" for _ in range(2))
    for bucket in (release_bucket, system_bucket):
        gcs.create_bucket(bucket)
    published = publish_release(GcsReleaseStore(storage_endpoint), release_bucket)
    topics = Topics(prefix=f"g{uuid.uuid4().hex[:8]}.")
    admin = secure_kafka.client("admin")

    async def prepare() -> None:
        log = await KafkaEventLog.connect(secure_kafka.bootstrap, security=admin)
        try:
            await log.create_topics(topics.specs())
        finally:
            await log.close()
        await apply_acls(secure_kafka.bootstrap, admin, stack_acls(topics))

    asyncio.run(prepare())
    boot_metadata(fake, url, published, secure_kafka, topics, secure_kafka.external_bootstrap,
                  storage=storage_endpoint, system_bucket=system_bucket)
    # the agent's live-log endpoint: on loopback and a free port here (a VM serves 0.0.0.0:5000)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        agent_port = probe.getsockname()[1]
    fake.attributes.update({"squall-agent-host": "127.0.0.1", "squall-agent-port": str(agent_port)})
    script = tmp_path / "startup.sh"
    script.write_text(STARTUP_SCRIPT)
    # the VM's python gets this machine's dependencies (its venv installed the wheel --no-deps)
    env = script_env(tmp_path, url, SQUALL_PYTHON=sys.executable)
    console = tmp_path / "console.log"  # the VM's serial console
    with open(console, "w") as out:
        vm = subprocess.Popen(["bash", str(script)], env=env, stdout=out, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        [joined] = wait_for_activations(secure_kafka, topics, fake.name, 1)
        assert joined.region == "us-central1" and joined.cores_mcpu == 1000
        agent = agent_pid(vm.pid)
        assert agent is not None
        os.kill(agent, signal.SIGKILL)  # the agent crashes: the VM restarts it, as systemd would
        wait_for_activations(secure_kafka, topics, fake.name, 2)  # the new agent announces itself
        restarted = agent_pid(vm.pid)
        assert restarted not in (None, agent), "the VM did not restart its agent"
        os.kill(restarted, signal.SIGTERM)  # drained and done: the VM deletes itself
        vm.wait(timeout=120)
    finally:
        if vm.poll() is None:
            os.killpg(vm.pid, signal.SIGKILL)
            vm.wait()
    output = console.read_text()
    assert vm.returncode == 0, output[-3000:]
    assert fake.deleted == [fake.name], output[-3000:]
    assert "restarting it (death 1 in a row)" in output


def agent_pid(script_pid: int, wait_s: float = 30.0) -> int | None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        children = subprocess.run(["pgrep", "-P", str(script_pid), "-f", "[-]m worker"], capture_output=True,
                                  text=True).stdout.split()
        if children:
            return int(children[0])
        time.sleep(0.2)
    return None


def wait_for_activations(kafka: SecureKafka, topics: Topics, name: str, count: int,
                         timeout_s: float = 180.0) -> list[InstanceActivated]:
    """The instance's first `count` InstanceActivated events (an agent announces itself at each start)."""

    async def watch() -> list[InstanceActivated]:
        log = await KafkaEventLog.connect(kafka.bootstrap, security=kafka.client("admin"), read_only=True)
        codec = Codec()
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                found = []
                for partition in range(topics.instance_partitions):
                    for record in await log.read(topics.instance, partition, 0, timeout_ms=300):
                        event = codec.decode(record.value)
                        if isinstance(event, InstanceActivated) and event.instance_name == name:
                            found.append(event)
                if len(found) >= count:
                    return found[:count]
            raise AssertionError(f"{name} announced itself fewer than {count} times on {topics.instance}")
        finally:
            await log.close()

    return asyncio.run(watch())

"""The startup script of a GCE worker VM (gce_startup.sh), and the metadata it reads.

The VM boots a stock Debian image; the script installs podman (with deploy/podman/setup.sh's fixes),
a JDK for JVM pools, and exactly the control plane's squall wheel, then runs the worker agent
against the cluster's Kafka over TLS as the `worker` principal, restarting it when it dies. The
script is the same text for every VM; everything specific travels as instance metadata:

  squall-cores, -memory-gib, -storage-gib, -pool, -region, -preemptible   the instance's size
  squall-kafka-bootstrap, squall-topic-prefix                             the log
  squall-wheel-url (gs://), squall-wheel-sha256                           the release (deploy/release.py)
  squall-kafka-ca                                                         the broker's CA (public)
  squall-kafka-username                                                   the worker principal
  squall-kafka-password-secret  (preferred) a Secret Manager version, read with the VM's account
  squall-kafka-password         (else) the password itself; anything on the VM that can reach the
                                metadata server can read it, which is why jobs are firewalled from it
  squall-pip-args, squall-base-images                                     optional
  squall-storage-endpoint, -secrets-endpoint, -compute-endpoint           optional (fakes in tests)

Nothing secret is baked into an image: credentials are fetched at boot into root-only files. When
the agent exits for good the VM deletes itself: a machine whose worker stopped costs money and does
nothing (Hail's run_script does the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

STARTUP_SCRIPT = (Path(__file__).with_name("gce_startup.sh")).read_text()


@dataclass(frozen=True)
class WorkerBootstrap:
    """What every VM of the fleet receives beside its size: the release, and how to reach Kafka."""

    wheel_url: str  # gs://bucket/squall/releases/<sha256>/squall-*.whl
    wheel_sha256: str
    kafka_ca_pem: str
    kafka_username: str = "worker"
    kafka_password_secret: str | None = None  # projects/P/secrets/S/versions/V
    kafka_password: str | None = field(default=None, repr=False)
    pip_args: str = ""
    base_images: str = "python"  # the JVM pool's image is built on the VM, no registry needed
    endpoints: dict[str, str] = field(default_factory=dict)  # storage / secrets / compute -> URL

    def __post_init__(self) -> None:
        missing = [n for n in ("wheel_url", "wheel_sha256", "kafka_ca_pem") if not getattr(self, n)]
        if missing:
            raise ValueError(f"a worker VM needs {', '.join(missing)} (the release and the broker's CA)")
        if not self.wheel_url.startswith("gs://"):
            raise ValueError(f"wheel_url must be a gs:// URL, not {self.wheel_url!r}")
        if not (self.kafka_password_secret or self.kafka_password):
            raise ValueError("a worker VM needs the Kafka password: a Secret Manager version "
                             "(kafka_password_secret) or, less safely, the password itself")


def worker_metadata(*, cores: int, memory_gib: float, storage_gib: int, pool: str, region: str, preemptible: bool,
                    kafka_bootstrap: str, topic_prefix: str, bootstrap: WorkerBootstrap,
                    job_private_for: str | None, system_bucket: str = "squall-system") -> dict[str, str]:
    items = {
        "startup-script": STARTUP_SCRIPT,
        "squall-cores": str(cores),
        "squall-memory-gib": f"{memory_gib:g}",
        "squall-storage-gib": str(storage_gib),
        "squall-pool": pool,
        "squall-region": region,
        "squall-preemptible": "true" if preemptible else "false",
        "squall-kafka-bootstrap": kafka_bootstrap,
        "squall-topic-prefix": topic_prefix,
        "squall-wheel-url": bootstrap.wheel_url,
        "squall-wheel-sha256": bootstrap.wheel_sha256,
        "squall-kafka-ca": bootstrap.kafka_ca_pem,
        "squall-kafka-username": bootstrap.kafka_username,
        "squall-base-images": bootstrap.base_images,
        "squall-system-bucket": system_bucket,
    }
    if bootstrap.kafka_password_secret:
        items["squall-kafka-password-secret"] = bootstrap.kafka_password_secret
    else:
        assert bootstrap.kafka_password is not None
        items["squall-kafka-password"] = bootstrap.kafka_password
    if bootstrap.pip_args:
        items["squall-pip-args"] = bootstrap.pip_args
    for name, url in bootstrap.endpoints.items():
        items[f"squall-{name}-endpoint"] = url
    if job_private_for:
        items["squall-job-private-for"] = job_private_for
    return items

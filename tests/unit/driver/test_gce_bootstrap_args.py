"""What the autoscaler hands every GCE VM: the release and the worker's credentials, checked up front."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.tls import CertificateAuthority
from events.kafka_security import KafkaSecurity
from events.process.config import ConfigError
from services.autoscaler.__main__ import parser, worker_bootstrap


def args(tmp_path: Path, *extra: str):  # type: ignore[no-untyped-def]
    ca = CertificateAuthority.load_or_create(tmp_path / "tls")
    KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "worker", "pw", str(ca.cert_file)).save(tmp_path / "worker.json")
    return parser().parse_args(["--provider", "gce", "--worker-kafka-credentials", str(tmp_path / "worker.json"),
                                *extra])


def test_a_published_release_and_a_secret_name_travel_not_the_password(tmp_path: Path) -> None:
    boot = worker_bootstrap(args(tmp_path, "--gce-wheel-url", "gs://b/squall/releases/ab/squall-0.1.0-py3-none-any.whl",
                                 "--gce-wheel-sha256", "ab",
                                 "--gce-kafka-password-secret", "projects/p/secrets/w/versions/3"))
    assert (boot.wheel_url, boot.wheel_sha256, boot.kafka_username) == (
        "gs://b/squall/releases/ab/squall-0.1.0-py3-none-any.whl", "ab", "worker")
    assert boot.kafka_ca_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert boot.kafka_password is None and boot.kafka_password_secret == "projects/p/secrets/w/versions/3"


def test_without_a_secret_the_password_itself_goes_to_the_vm(tmp_path: Path) -> None:
    boot = worker_bootstrap(args(tmp_path, "--gce-wheel-url", "gs://b/w.whl", "--gce-wheel-sha256", "ab"))
    assert boot.kafka_password == "pw" and boot.kafka_password_secret is None


@pytest.mark.parametrize(("extra", "says"), [
    ((), "--gce-release-bucket"),
    (("--gce-wheel-url", "https://x/w.whl", "--gce-wheel-sha256", "ab"), "gs://"),
])
def test_a_vm_without_a_release_is_refused(tmp_path: Path, extra: tuple[str, ...], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        worker_bootstrap(args(tmp_path, *extra))


def test_credentials_without_tls_are_refused(tmp_path: Path) -> None:
    KafkaSecurity("SASL_PLAINTEXT", "SCRAM-SHA-512", "worker", "pw").save(tmp_path / "plain.json")
    a = parser().parse_args(["--provider", "gce", "--worker-kafka-credentials", str(tmp_path / "plain.json"),
                             "--gce-wheel-url", "gs://b/w.whl", "--gce-wheel-sha256", "ab"])
    with pytest.raises(ConfigError, match="SASL_SSL"):
        worker_bootstrap(a)

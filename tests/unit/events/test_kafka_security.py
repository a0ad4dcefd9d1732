"""Kafka credentials files: read once, refused when too open or malformed, turned into aiokafka settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deploy.tls import CertificateAuthority
from events.kafka_security import KafkaCredentialsError, KafkaSecurity


def test_a_saved_file_is_private_and_loads_back(tmp_path: Path) -> None:
    security = KafkaSecurity("SASL_PLAINTEXT", "SCRAM-SHA-512", "front", "s3cret")
    security.save(tmp_path / "front.json")
    assert os.stat(tmp_path / "front.json").st_mode & 0o777 == 0o600
    assert KafkaSecurity.load(tmp_path / "front.json") == security
    assert "s3cret" not in repr(security)


def test_a_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "worker.json"
    KafkaSecurity("SASL_PLAINTEXT", "SCRAM-SHA-512", "worker", "pw").save(path)
    os.chmod(path, 0o644)
    with pytest.raises(KafkaCredentialsError, match="chmod 600"):
        KafkaSecurity.load(path)


@pytest.mark.parametrize(("content", "says"), [
    ("not json", "not JSON"),
    (json.dumps({"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "username": "w",
                 "password": "p"}), "needs ca_file"),
    (json.dumps({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "GSSAPI", "username": "w",
                 "password": "p"}), "sasl_mechanism"),
    (json.dumps({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512"}), "username"),
    (json.dumps({"security_protocol": "SASL_PLAINTEXT", "user": "w"}), "expected an object with keys"),
])
def test_malformed_files_say_what_is_wrong(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(KafkaCredentialsError, match=says):
        KafkaSecurity.load(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(KafkaCredentialsError, match=str(tmp_path / "nope.json")):
        KafkaSecurity.load(tmp_path / "nope.json")


def test_tls_settings_verify_the_broker_against_the_ca_relative_to_the_file(tmp_path: Path) -> None:
    CertificateAuthority.load_or_create(tmp_path / "tls")
    path = tmp_path / "worker.json"
    path.write_text(json.dumps({"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                                "username": "worker", "password": "pw", "ca_file": "tls/ca.crt"}))
    os.chmod(path, 0o600)
    security = KafkaSecurity.load(path)
    assert security.ca_file == str(tmp_path / "tls" / "ca.crt")
    kwargs = security.client_kwargs()
    assert (kwargs["security_protocol"], kwargs["sasl_mechanism"], kwargs["sasl_plain_username"]) == (
        "SASL_SSL", "SCRAM-SHA-512", "worker")
    context = kwargs["ssl_context"]
    assert context.check_hostname and context.verify_mode.name == "CERT_REQUIRED"


def test_no_credentials_means_no_settings() -> None:
    assert KafkaSecurity().client_kwargs() == {}

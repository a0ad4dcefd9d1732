"""How a process authenticates to Kafka: a credentials file per principal, read once at start.

    {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
     "username": "worker", "password": "...", "ca_file": "/etc/squall/kafka-ca.crt"}

`security_protocol` is Kafka's: PLAINTEXT (no authentication), SASL_PLAINTEXT (SCRAM on a loopback
listener), SASL_SSL (SCRAM inside TLS; the broker's certificate is checked against `ca_file`, name
included), SSL. The file holds a password, so it must not be readable by group or others.
"""

from __future__ import annotations

import json
import os
import ssl
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


class KafkaCredentialsError(ValueError):
    """A credentials file is missing, unreadable, too open or malformed; the message names it."""


@dataclass(frozen=True)
class KafkaSecurity:
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.security_protocol not in PROTOCOLS:
            raise KafkaCredentialsError(f"security_protocol {self.security_protocol!r} is not one of {PROTOCOLS}")
        if self.security_protocol.startswith("SASL"):
            if self.sasl_mechanism not in MECHANISMS:
                raise KafkaCredentialsError(f"sasl_mechanism {self.sasl_mechanism!r} is not one of {MECHANISMS}")
            if not self.username or not self.password:
                raise KafkaCredentialsError(f"{self.security_protocol} needs a username and a password")
        if self.security_protocol.endswith("SSL") and not self.ca_file:
            raise KafkaCredentialsError(f"{self.security_protocol} needs ca_file: the CA that signed the broker")

    @property
    def principal(self) -> str:
        return f"User:{self.username}" if self.username else "User:ANONYMOUS"

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        kwargs: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            kwargs.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username,
                          sasl_plain_password=self.password)
        if self.security_protocol.endswith("SSL"):
            kwargs["ssl_context"] = self.ssl_context()
        return kwargs

    def ssl_context(self) -> ssl.SSLContext:
        """TLS 1.2+, the broker's certificate checked against ca_file, its name against the bootstrap host."""
        assert self.ca_file is not None
        try:
            context = ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise KafkaCredentialsError(f"cannot load the broker's CA from {self.ca_file}: {exc}") from exc
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def save(self, path: Path) -> None:
        """Write as a credentials file, readable by its owner only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({k: v for k, v in asdict(self).items() if v is not None}, f, indent=2)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> KafkaSecurity:
        try:
            mode = path.stat().st_mode
            text = path.read_text()
        except OSError as exc:
            raise KafkaCredentialsError(f"cannot read Kafka credentials {path}: {exc.strerror}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KafkaCredentialsError(f"Kafka credentials {path} are readable by others "
                                        f"(mode {stat.S_IMODE(mode):o}); chmod 600 {path}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KafkaCredentialsError(f"Kafka credentials {path} are not JSON: {exc}") from exc
        known = {"security_protocol", "sasl_mechanism", "username", "password", "ca_file"}
        if not isinstance(data, dict) or set(data) - known:
            raise KafkaCredentialsError(f"Kafka credentials {path}: expected an object with keys from "
                                        f"{sorted(known)}, got {sorted(data) if isinstance(data, dict) else data!r}")
        ca_file = data.get("ca_file")
        if ca_file and not Path(ca_file).is_absolute():  # relative to the credentials file
            data["ca_file"] = str(path.parent / ca_file)
        try:
            return cls(**data)
        except KafkaCredentialsError as exc:
            raise KafkaCredentialsError(f"Kafka credentials {path}: {exc}") from exc


PLAINTEXT = KafkaSecurity()

"""The secrets of a secured squall broker: a CA, the broker's certificate, one password per principal.

    auth = KafkaAuth.load_or_create(home / "kafka-auth")          # 0700; passwords.json is 0600
    broker = KafkaBroker(home / "kafka", security=auth.broker_security(["127.0.0.1"]))
    auth.write_credentials(home / "credentials", tls_roles={"worker"})   # <role>.json per principal

Principals: `controller` and `broker` authenticate the broker to itself with PLAIN (their passwords
live only in the broker's own configuration); `admin` (a super user: creates topics and ACLs, runs
replay and audit) and one SCRAM-SHA-512 user per role (deploy/kafka_acls.py says what each may do).
Passwords are random and created once; the CA's key never leaves this directory.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.kafka_acls import ADMIN, ROLES
from deploy.tls import CertificateAuthority
from events.kafka_security import KafkaSecurity

SCRAM_MECHANISM = "SCRAM-SHA-512"
BROKER_USERS = ("controller", "broker")  # PLAIN, defined in the broker's JAAS configuration
SCRAM_USERS = (ADMIN, *ROLES)


@dataclass(frozen=True)
class BrokerSecurity:
    """What KafkaBroker needs to run SASL listeners, TLS for remote clients and the authorizer."""

    keystore: Path  # PEM: private key, certificate, CA certificate
    controller_password: str
    broker_password: str
    scram_users: dict[str, str]  # user -> password, created in the broker's metadata
    external_host: str = "127.0.0.1"  # the TLS listener's advertised address (in the certificate)
    external_bind: str | None = None  # the address it listens on (default: external_host)


@dataclass
class KafkaAuth:
    directory: Path
    passwords: dict[str, str]
    ca: CertificateAuthority

    @classmethod
    def load_or_create(cls, directory: Path) -> KafkaAuth:
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        path = directory / "passwords.json"
        try:
            passwords = json.loads(path.read_text())
        except FileNotFoundError:
            passwords = {}
        missing = [u for u in (*BROKER_USERS, *SCRAM_USERS) if u not in passwords]
        if missing:  # new principals (e.g. a role added by an upgrade) get a password once
            passwords.update({u: secrets.token_urlsafe(24) for u in missing})
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(passwords, f, indent=2)
            tmp.replace(path)
        return cls(directory, passwords, CertificateAuthority.load_or_create(directory / "tls"))

    @property
    def ca_file(self) -> Path:
        return self.ca.cert_file

    def broker_security(self, hosts: Sequence[str] = ("127.0.0.1",), bind: str | None = None) -> BrokerSecurity:
        """The broker's side; its certificate names `hosts` (the first is the advertised address)."""
        names = list(dict.fromkeys([*hosts, "127.0.0.1", "localhost"]))
        keystore = self.ca.issue_server_cert(self.directory / "tls" / "broker", names)
        return BrokerSecurity(keystore=keystore, controller_password=self.passwords["controller"],
                              broker_password=self.passwords["broker"],
                              scram_users={u: self.passwords[u] for u in SCRAM_USERS},
                              external_host=hosts[0], external_bind=bind)

    def client(self, user: str, tls: bool) -> KafkaSecurity:
        """A SCRAM principal's client side: over TLS (the remote listener) or the loopback one."""
        if user not in SCRAM_USERS:
            raise ValueError(f"no Kafka principal {user!r}; principals: {', '.join(SCRAM_USERS)}")
        return KafkaSecurity(security_protocol="SASL_SSL" if tls else "SASL_PLAINTEXT", sasl_mechanism=SCRAM_MECHANISM,
                             username=user, password=self.passwords[user],
                             ca_file=str(self.ca_file) if tls else None)

    def write_credentials(self, directory: Path, tls_roles: Iterable[str]) -> dict[str, Path]:
        """A credentials file (0600, in a 0700 directory) per principal; `tls_roles` use the TLS listener."""
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        over_tls = set(tls_roles)
        files = {}
        for user in SCRAM_USERS:
            files[user] = directory / f"{user}.json"
            self.client(user, tls=user in over_tls).save(files[user])
        return files


# --- the broker's configuration -------------------------------------------------------------------
_PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
_SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule"


def broker_properties(sec: BrokerSecurity, internal_port: int, controller_port: int,
                      external_port: int) -> dict[str, str]:
    """Listeners and authorization of a secured single-node KRaft broker.

    INTERNAL (loopback, SASL_PLAINTEXT): the broker to itself (PLAIN) and local services (SCRAM).
    EXTERNAL (SASL_SSL, SCRAM only): workers and anything not on this machine.
    CONTROLLER (loopback, SASL_PLAINTEXT, PLAIN): the KRaft controller; only the broker uses it.
    """
    bind = sec.external_bind or sec.external_host
    c, b = sec.controller_password, sec.broker_password
    return {
        "listeners": f"INTERNAL://127.0.0.1:{internal_port},EXTERNAL://{bind}:{external_port},"
                     f"CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"INTERNAL://127.0.0.1:{internal_port},EXTERNAL://{sec.external_host}:{external_port}",
        "listener.security.protocol.map": "CONTROLLER:SASL_PLAINTEXT,INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_SSL",
        "inter.broker.listener.name": "INTERNAL",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config":
            f'{_PLAIN} required username="controller" password="{c}" user_controller="{c}";',
        "listener.name.internal.sasl.enabled.mechanisms": f"{SCRAM_MECHANISM},PLAIN",
        "listener.name.internal.plain.sasl.jaas.config":
            f'{_PLAIN} required username="broker" password="{b}" user_broker="{b}";',
        f"listener.name.internal.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": f"{_SCRAM} required;",
        "listener.name.external.sasl.enabled.mechanisms": SCRAM_MECHANISM,
        f"listener.name.external.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": f"{_SCRAM} required;",
        "listener.name.external.ssl.keystore.type": "PEM",
        "listener.name.external.ssl.keystore.location": str(sec.keystore),
        "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:controller;User:broker;User:{ADMIN}",
        "allow.everyone.if.no.acl.found": "false",
    }


def add_scram_arguments(sec: BrokerSecurity) -> list[str]:
    """kafka-storage format arguments that create every SCRAM user with the storage."""
    out = []
    for user, password in sorted(sec.scram_users.items()):
        out += ["--add-scram", f"{SCRAM_MECHANISM}=[name={user},password={password}]"]
    return out


def broker_client(sec: BrokerSecurity) -> KafkaSecurity:
    """The broker's own PLAIN principal on the loopback listener: works before any SCRAM user exists."""
    return KafkaSecurity(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", username="broker",
                         password=sec.broker_password)


def java_client_properties(client: KafkaSecurity) -> str:
    """The same principal as a Java client's properties (for Kafka's own command-line tools)."""
    module = _PLAIN if client.sasl_mechanism == "PLAIN" else _SCRAM
    return (f"security.protocol={client.security_protocol}\nsasl.mechanism={client.sasl_mechanism}\n"
            f'sasl.jaas.config={module} required username="{client.username}" password="{client.password}";\n')


def scram_digest(user: str, password: str) -> str:
    """What the broker's data dir records per created user: changes when the password does."""
    import hashlib

    return hashlib.sha256(f"{user}\0{password}".encode()).hexdigest()

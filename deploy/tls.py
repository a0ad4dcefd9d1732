"""A private certificate authority and the broker's TLS certificate, made with `cryptography`.

    ca = CertificateAuthority.load_or_create(home / "tls")        # ca.crt (public), ca.key (0600)
    ca.issue_server_cert(home / "tls" / "broker", ["127.0.0.1", "localhost", "10.0.0.5"])
    # -> broker.crt, broker.key (0600), broker.pem (key + chain: Kafka's PEM keystore)

Clients verify the broker against ca.crt and check its name (IP or DNS SAN), so the CA file is all a
worker needs to trust the broker; the CA's key never leaves the control plane's state directory.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = datetime.timedelta(days=3650)
SERVER_VALIDITY = datetime.timedelta(days=825)  # the longest browsers and most TLS stacks accept
RENEW_BEFORE = datetime.timedelta(days=30)


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret: created 0600 from the start, never readable by others even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):  # keep order, drop repeats
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


@dataclass
class CertificateAuthority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path

    @classmethod
    def load_or_create(cls, directory: Path, name: str = "squall local CA") -> CertificateAuthority:
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        cert_file, key_file = directory / "ca.crt", directory / "ca.key"
        if cert_file.exists() and key_file.exists():
            cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            if cert.not_valid_after_utc - _now() > RENEW_BEFORE:
                return cls(cert, key, cert_file)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + CA_VALIDITY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=True, crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        _write_private(key_file, _key_pem(key))
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        os.chmod(cert_file, 0o644)
        return cls(cert, key, cert_file)

    def issue_server_cert(self, stem: Path, hosts: Sequence[str]) -> Path:
        """Certificate and key for a server answering as any of `hosts`; reused while it is valid,
        signed by this CA and names the same hosts. Returns the PEM keystore (key, cert, CA cert)."""
        keystore = stem.with_suffix(".pem")
        cert_file = stem.with_suffix(".crt")
        if keystore.exists() and cert_file.exists() and self._still_good(cert_file, hosts):
            return keystore
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + SERVER_VALIDITY)
                .add_extension(_san(hosts), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                               critical=False)
                .sign(self.key, hashes.SHA256()))
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        ca_pem = self.cert.public_bytes(serialization.Encoding.PEM)
        _write_private(stem.with_suffix(".key"), _key_pem(key))
        _write_private(keystore, _key_pem(key) + cert_pem + ca_pem)
        cert_file.write_bytes(cert_pem)
        return keystore

    def _still_good(self, cert_file: Path, hosts: Sequence[str]) -> bool:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        if cert.issuer != self.cert.subject or cert.not_valid_after_utc - _now() < RENEW_BEFORE:
            return False
        try:
            cert.verify_directly_issued_by(self.cert)
        except (ValueError, TypeError, InvalidSignature):  # signed by another CA
            return False
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return set(_san(hosts)) <= set(names)

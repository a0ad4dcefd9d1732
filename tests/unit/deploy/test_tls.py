"""The stack's CA and the broker's certificate: made once, reused, reissued when the names change."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from cryptography import x509

from deploy.tls import CertificateAuthority


def names(cert_file: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))


def test_the_ca_key_and_the_keystore_are_private_and_reused(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "tls")
    keystore = ca.issue_server_cert(tmp_path / "tls" / "broker", ["127.0.0.1", "localhost"])
    assert os.stat(tmp_path / "tls").st_mode & 0o777 == 0o700
    for secret in ("ca.key", "broker.key", "broker.pem"):
        assert os.stat(tmp_path / "tls" / secret).st_mode & 0o777 == 0o600, secret
    first = keystore.read_bytes()
    again = CertificateAuthority.load_or_create(tmp_path / "tls")
    assert again.cert == ca.cert
    assert again.issue_server_cert(tmp_path / "tls" / "broker", ["127.0.0.1"]).read_bytes() == first


def test_a_new_name_gets_a_new_certificate_the_ca_still_vouches_for(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "tls")
    ca.issue_server_cert(tmp_path / "tls" / "broker", ["127.0.0.1"])
    ca.issue_server_cert(tmp_path / "tls" / "broker", ["10.20.0.1", "127.0.0.1"])
    assert names(tmp_path / "tls" / "broker.crt") == {"10.20.0.1", "127.0.0.1"}
    cert = x509.load_pem_x509_certificate((tmp_path / "tls" / "broker.crt").read_bytes())
    cert.verify_directly_issued_by(ca.cert)


def test_a_tls_client_trusting_the_ca_accepts_the_keystore(tmp_path: Path) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path / "tls")
    keystore = ca.issue_server_cert(tmp_path / "tls" / "broker", ["127.0.0.1"])
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(keystore)  # key + chain in one PEM, as Kafka's PEM keystore reads it
    client = ssl.create_default_context(cafile=ca.cert_file)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    s = server.wrap_bio(server_in, server_out, server_side=True)
    for _ in range(10):  # pump the handshake between the two ends in memory
        for end in (c, s):
            try:
                end.do_handshake()
            except ssl.SSLWantReadError:
                pass
        server_in.write(outgoing.read())
        incoming.write(server_out.read())
    assert c.version() is not None and c.getpeercert()["subjectAltName"] == (("IP Address", "127.0.0.1"),)

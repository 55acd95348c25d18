"""`fieldcheck serve --tls-cert --tls-key`: HTTPS, which phones need for location and the camera."""

from __future__ import annotations

import ipaddress
import os
import ssl
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fieldcheck.settings import Settings
from fieldcheck.storage import LocalStorage
from tests.support.backends import free_port

CHEAP_HASHING = {"FIELDCHECK_ARGON2_TIME_COST": "1", "FIELDCHECK_ARGON2_MEMORY_KIB": "8192"}


def self_signed(folder: Path, name: str = "server") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, signed by its own key: (certificate, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / f"{name}.pem", folder / f"{name}-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def _environment(home: Path, **extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FIELDCHECK_")}
    environment.update({"FIELDCHECK_HOME": str(home), **CHEAP_HASHING, **extra})
    return environment


def _serve(*args: str, home: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """`fieldcheck serve` that is expected to refuse to start (a timeout says it started)."""
    return subprocess.run(
        [sys.executable, "-m", "fieldcheck.cli", "serve", "--port", str(free_port()), *args],
        env=_environment(home, **extra),
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_speaks_https_with_the_given_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "fieldcheck.cli", "serve", "--port", str(port),
         "--tls-cert", str(cert), "--tls-key", str(key)],
        cwd=tmp_path,
        env=_environment(tmp_path / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    trusting = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                live = httpx.get(f"https://127.0.0.1:{port}/health/live", verify=trusting, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not come up"
                assert process.poll() is None, "serve exited"
                time.sleep(0.3)
        assert live.status_code == 200, live.text
        assert live.url.scheme == "https"
        ready = httpx.get(f"https://localhost:{port}/health/ready", verify=trusting, timeout=10)
        assert ready.status_code == 200, ready.text
        # Plain HTTP to the same port gets no answer, and the server goes on.
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=5)
        # A client that does not trust the certificate is refused by its own TLS check.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"https://127.0.0.1:{port}/health/live", timeout=5)
        again = httpx.get(f"https://127.0.0.1:{port}/health/live", verify=trusting, timeout=5)
        assert again.status_code == 200
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    text = output.decode(errors="replace")
    assert f"fieldcheck on https://127.0.0.1:{port} " in text, text
    assert "Traceback" not in text, text


def test_the_certificate_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FIELDCHECK_TLS_CERT and FIELDCHECK_TLS_KEY, like the options (which win over them)."""
    for name in (
        "FIELDCHECK_TLS_CERT",
        "FIELDCHECK_TLS_KEY",
        "FIELDCHECK_PUBLIC_BASE_URL",
        "FIELDCHECK_HOST",
    ):
        monkeypatch.delenv(name, raising=False)
    cert, key = self_signed(tmp_path)
    settings = Settings(home=tmp_path, tls_cert=cert, tls_key=key, port=8443)
    assert settings.tls_enabled
    assert settings.base_url == "https://127.0.0.1:8443"
    # The URLs handed out (local storage) are https too: a page served over HTTPS may use them.
    upload = LocalStorage(settings).presign_upload(
        "photos/a.jpg", content_type="image/jpeg", size_bytes=10, expires_s=60
    )
    assert upload.url.startswith("https://127.0.0.1:8443/")
    published = settings.model_copy(update={"public_base_url": "https://fieldcheck.example.com/"})
    assert published.base_url == "https://fieldcheck.example.com"
    assert Settings(home=tmp_path).base_url.startswith("http://")

    monkeypatch.setenv("FIELDCHECK_TLS_CERT", str(cert))
    monkeypatch.setenv("FIELDCHECK_TLS_KEY", str(key))
    from_environment = Settings(home=tmp_path)
    assert (from_environment.tls_cert, from_environment.tls_key) == (cert, key)
    assert from_environment.base_url.startswith("https://")

    # Only the key in the environment: serve refuses, and says what is missing.
    half = _serve(home=tmp_path / "home", FIELDCHECK_TLS_KEY=str(key))
    assert half.returncode == 2, half.stderr
    assert "--tls-cert" in half.stderr and "FIELDCHECK_TLS_CERT" in half.stderr


@pytest.mark.parametrize("given", ["--tls-cert", "--tls-key"])
def test_one_of_the_two_options_alone_is_refused(tmp_path: Path, given: str) -> None:
    cert, key = self_signed(tmp_path)
    answer = _serve(given, str(cert if given == "--tls-cert" else key), home=tmp_path / "home")
    missing = "--tls-key" if given == "--tls-cert" else "--tls-cert"
    assert answer.returncode == 2, answer.stderr
    assert f"{given} needs {missing} too" in answer.stderr, answer.stderr
    assert "Traceback" not in answer.stderr
    assert not (tmp_path / "home" / "fieldcheck.db").exists()  # refused before anything started


def test_unusable_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    _, other_key = self_signed(tmp_path, "other")
    home = tmp_path / "home"

    missing = _serve("--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(key), home=home)
    assert missing.returncode == 2
    assert "nope.pem" in missing.stderr and "No such file" in missing.stderr, missing.stderr

    swapped = _serve("--tls-cert", str(key), "--tls-key", str(cert), home=home)
    assert swapped.returncode == 2
    assert "not a PEM certificate and its private key" in swapped.stderr, swapped.stderr

    mismatched = _serve("--tls-cert", str(cert), "--tls-key", str(other_key), home=home)
    assert mismatched.returncode == 2
    assert "not a PEM certificate and its private key" in mismatched.stderr, mismatched.stderr

    locked = tmp_path / "locked-key.pem"
    locked.write_bytes(
        serialization.load_pem_private_key(key.read_bytes(), password=None).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"a passphrase"),
        )
    )
    encrypted = _serve("--tls-cert", str(cert), "--tls-key", str(locked), home=home)
    assert encrypted.returncode == 2
    assert "passphrase" in encrypted.stderr, encrypted.stderr

    for answer in (missing, swapped, mismatched, encrypted):
        assert "Traceback" not in answer.stderr

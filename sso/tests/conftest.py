import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.tests.servers import free_port, wait_http

HERE = Path(__file__).resolve().parent
CALLBACK = "http://testserver/api/v1/auth/oidc/callback/"


@dataclass
class Provider:
    base: str
    issuer: str
    client_id: str
    client_secret: str


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    """A real OpenID Connect provider (django-oauth-toolkit, RS256) in its own process on loopback,
    with this application registered as a confidential client redirecting to the test server."""
    pytest.importorskip("oauth2_provider", reason="django-oauth-toolkit (requirements-dev.txt) is not installed")
    tmp = tmp_path_factory.mktemp("oidc-provider")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    provider = Provider(base, f"{base}/o", "workflow-" + secrets.token_hex(4), secrets.token_urlsafe(24))
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(HERE),
        "DJANGO_SETTINGS_MODULE": "oidc_provider.settings",
        "PROVIDER_DB": str(tmp / "provider.sqlite3"),
        "PROVIDER_KEY": str(tmp / "key.pem"),
        "PROVIDER_ISSUER": provider.issuer,
    }
    setup = HERE / "oidc_provider" / "setup_app.py"
    subprocess.run(
        [sys.executable, str(setup), provider.client_id, provider.client_secret, CALLBACK],
        env=env,
        cwd=tmp,
        check=True,
        capture_output=True,
    )
    log = (tmp / "provider.log").open("w")  # runserver logs each request: a pipe nobody reads would fill
    proc = subprocess.Popen(
        [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"{provider.issuer}/.well-known/openid-configuration", proc=proc)
        yield provider
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()

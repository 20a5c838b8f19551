"""The embedded default boots with nothing but Python: SQLite, in-memory layers, inline jobs.

Serves a database migrated and seeded by the real commands (core/tests/servers.py) with daphne in a
subprocess and logs in over HTTP.
"""

import httpx
import pytest

from core.tests.servers import embedded_server, login


@pytest.mark.integration
def test_embedded_default_serves_login_docs_and_admin(tmp_path):
    with embedded_server(tmp_path) as (base, _env):
        headers = login(base, "alice@acme.example")
        me = httpx.get(f"{base}/api/v1/auth/me/", headers=headers)
        assert me.json()["email"] == "alice@acme.example"
        assert httpx.get(f"{base}/api/docs/").status_code == 200
        assert httpx.get(f"{base}/api/schema/").status_code == 200
        assert httpx.get(f"{base}/admin/login/").status_code == 200
        assert httpx.get(f"{base}/health/ready/").json()["checks"] == {"database": "ok"}

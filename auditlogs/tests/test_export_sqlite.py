"""Audit export and verify on the embedded default (SQLite, daphne), as `make run` serves them."""

import csv
import io
import json
import uuid

import httpx
import pytest

from core.tests.servers import embedded_server, login, manage


@pytest.mark.integration
def test_export_and_verify_answer_on_sqlite_over_http_and_from_the_commands(tmp_path):
    with embedded_server(tmp_path) as (base, env):
        headers = login(base, "audrey@acme.example")
        csv_response = httpx.get(
            f"{base}/api/v1/audit-logs/export/", params={"format": "csv"}, headers=headers, timeout=30
        )
        assert csv_response.status_code == 200
        rows = list(csv.DictReader(io.StringIO(csv_response.text)))
        assert len(rows) > 10
        assert [int(r["sequence"]) for r in rows] == list(range(1, len(rows) + 1))
        assert all(
            str(uuid.UUID(r["organization_id"])) == r["organization_id"] for r in rows
        )  # dashed, as on PostgreSQL
        assert rows[0]["created_at"].endswith("+00:00")

        jsonl = httpx.get(f"{base}/api/v1/audit-logs/export/", params={"format": "jsonl"}, headers=headers, timeout=30)
        lines = [json.loads(line) for line in jsonl.text.splitlines()]
        assert len(lines) > len(rows)  # the CSV export's own audit row is in this one
        assert not any("error" in line for line in lines)

        verify = httpx.get(f"{base}/api/v1/audit-logs/verify/", headers=headers, timeout=30).json()
        assert verify["ok"] is True and verify["checked"] >= len(lines)

    exported = manage(env, "audit_export", "--format", "jsonl")
    chains = [json.loads(line)["chain"] for line in exported.stdout.splitlines()]
    assert len(set(chains)) == 2 and chains == sorted(chains)  # acme and globex, chain by chain
    checked = manage(env, "audit_verify")
    assert "acme: ok" in checked.stdout

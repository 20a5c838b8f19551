"""Runs scripts/fuzz.sh (schemathesis against a live daphne, seeded demo data, JWT) with a bounded
budget and reads its JUnit report: 0 server errors, and no schema violation beyond the open
findings routed to their owners (each also pinned by a strict xfail in test_security_fuzz_findings).

schemathesis is never imported here: it lives in its own venv (.venv-fuzz) and runs from /tmp.
"""

import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]

# Operation -> why it still fails (owner). Remove an entry when its owner fixes it.
KNOWN_OPEN = {
    "GET /api/v1/workflows/{id}/draft/": "workflows: escalate_to '' not in EscalateToEnum",
    "PUT /api/v1/workflows/{id}/draft/": "workflows: escalate_to '' not in EscalateToEnum",
    "GET /api/v1/workflows/{id}/versions/": "workflows: escalate_to '' not in EscalateToEnum",
    "POST /api/v1/tasks/bulk-approve/": "approvals: response documented as a TaskList item",
}


@pytest.mark.integration
def test_fuzz_api_with_schemathesis(tmp_path):
    db_name = settings.DATABASES["default"]["NAME"]
    redis_db = (int(settings.REDIS_URL.rsplit("/", 1)[-1] or 0) + 8) % 16 if settings.REDIS_URL else 15
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        "FUZZ_DATABASE": f"{db_name.removeprefix('test_')}_fuzz",
        "FUZZ_REDIS_DB": str(redis_db),
        "FUZZ_MAX_TIME": os.environ.get("FUZZ_MAX_TIME", "110"),
        "FUZZ_OUT": str(tmp_path / "fuzz"),
    }
    result = subprocess.run(["bash", "scripts/fuzz.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    summary = re.search(r"fuzz: (\d+) cases", output)
    assert summary, output[-3000:]
    cases = int(summary.group(1))
    print(f"fuzz: {cases} cases")  # the figure for the closing note (pytest -s)
    assert cases >= 300, output[-3000:]

    server_log = (tmp_path / "fuzz" / "server.log").read_text()
    assert "Internal Server Error" not in server_log, server_log[-5000:]

    reports = sorted((tmp_path / "fuzz").glob("junit-*.xml"))
    assert reports, output[-3000:]
    root = ET.parse(reports[-1]).getroot()
    failing = {}
    for case in root.iter("testcase"):
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            failing[case.attrib["name"]] = (bad.attrib.get("message", "") + (bad.text or ""))[:2000]
    server_errors = {name: text for name, text in failing.items() if "Server error" in text}
    assert not server_errors, server_errors
    unexpected = {name: text for name, text in failing.items() if name not in KNOWN_OPEN}
    assert not unexpected, unexpected

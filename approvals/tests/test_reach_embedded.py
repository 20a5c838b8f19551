"""Issue 16 on the embedded default (SQLite, daphne, as `make run` serves it), driven over HTTP.

The same points run on PostgreSQL in test_lifecycle_retract.py, test_lifecycle_add_assignee.py,
test_action_links.py, test_lifecycle_migrate.py and requests/tests/test_export.py.
"""

import csv
import io
import re

import httpx
import pytest

from core.tests.servers import embedded_server, login

PURCHASE = {
    "workflow": "purchase-request",
    "title": "Laptops",
    "submit": True,
    "data": {"amount": 20000, "vendor": "Contoso", "justification": "New hires"},
}


def pending_task(base, headers, request_id):
    tasks = httpx.get(f"{base}/api/v1/tasks/", params={"status": "pending"}, headers=headers, timeout=30).json()
    (task,) = [t for t in tasks["results"] if t["request"] == request_id]
    return task


def action_link_path(base, headers, request_id) -> str:
    # The link the task e-mail carries (notification data, as test_action_links.link_of reads it).
    notes = httpx.get(f"{base}/api/v1/notifications/", headers=headers, timeout=30).json()["results"]
    (url,) = [n["data"]["action_url"] for n in notes if n["kind"] == "task_assigned" and n["request"] == request_id]
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


@pytest.mark.integration
def test_action_link_retract_add_approver_export_and_migration_on_sqlite(tmp_path):
    with embedded_server(tmp_path) as (base, _env):
        alice = login(base, "alice@acme.example")
        created = httpx.post(f"{base}/api/v1/requests/", json=PURCHASE, headers=alice, timeout=30)
        assert created.status_code == 201, created.text
        rid = created.json()["id"]

        # 16.1: mark approves from the e-mail link: GET shows the page, POST with its CSRF token acts once.
        path = action_link_path(base, login(base, "mark@acme.example"), rid)
        with httpx.Client(base_url=base, timeout=30) as browser:
            page = browser.get(path)
            assert page.status_code == 200 and "Laptops" in page.text
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            done = browser.post(path, data={"csrfmiddlewaretoken": token, "decision": "approve", "comment": ""})
            assert done.status_code == 200, done.text
            again = browser.get(path)  # the link is used: refused, and nothing acts twice
            assert again.status_code == 409 and 'data-reason="used"' in again.text
        mark = httpx.get(
            f"{base}/api/v1/tasks/", params={"status": "pending"}, headers=login(base, "mark@acme.example")
        )
        assert rid not in [t["request"] for t in mark.json()["results"]]

        # 16.3: fiona adds carl to the Finance review `all` step; 16.2: she approves and retracts.
        fiona, frank, carl = (login(base, f"{u}@acme.example") for u in ("fiona", "frank", "carl"))
        finance = pending_task(base, fiona, rid)
        added = httpx.post(
            f"{base}/api/v1/tasks/{finance['id']}/assignees/",
            json={"user": "carl@acme.example", "comment": "CFO should see this"},
            headers=fiona,
            timeout=30,
        )
        assert added.status_code == 200, added.text
        assert pending_task(base, carl, rid)["id"] == finance["id"]

        def act(headers, verb, comment="ok"):
            return httpx.post(
                f"{base}/api/v1/tasks/{finance['id']}/{verb}/", json={"comment": comment}, headers=headers, timeout=30
            )

        assert act(fiona, "approve").status_code == 200
        retracted = act(fiona, "retract", "wrong request")
        assert retracted.status_code == 200, retracted.text
        assert act(frank, "approve").status_code == 200
        assert act(carl, "approve").status_code == 200
        assert pending_task(base, fiona, rid)["id"] == finance["id"]  # `all`: fiona's place is open again
        assert act(fiona, "approve").status_code == 200
        final = act(fiona, "retract", "too late")
        assert final.status_code == 409 and final.json()["error"]["code"] == "decision_final", final.text

        # 16.5: export as CSV and XLSX.
        admin = login(base, "admin@acme.example")
        exported = httpx.get(f"{base}/api/v1/requests/export/", params={"format": "csv"}, headers=admin, timeout=30)
        assert exported.status_code == 200, exported.text
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert "Laptops" in [r["title"] for r in rows]
        xlsx = httpx.get(f"{base}/api/v1/requests/export/", params={"format": "xlsx"}, headers=admin, timeout=30)
        assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"

        # 16.4: publish version 2 of the workflow, dry-run then migrate the running request.
        workflows = httpx.get(f"{base}/api/v1/workflows/", headers=admin, timeout=30).json()["results"]
        (workflow,) = [w for w in workflows if w["key"] == "purchase-request"]
        draft = httpx.put(f"{base}/api/v1/workflows/{workflow['id']}/draft/", json={}, headers=admin, timeout=30)
        assert draft.status_code == 200, draft.text
        published = httpx.post(f"{base}/api/v1/workflows/{workflow['id']}/publish/", headers=admin, timeout=30)
        assert published.status_code == 200, published.text
        body = {"from_version": 1, "to_version": 2, "requests": [rid]}
        dry = httpx.post(f"{base}/api/v1/workflows/{workflow['id']}/migrate/", json=body, headers=admin, timeout=30)
        assert dry.status_code == 200, dry.text
        (plan,) = dry.json()["results"]
        assert plan["action"] == "migrate"
        assert httpx.get(f"{base}/api/v1/requests/{rid}/", headers=alice).json()["workflow_version"] == 1
        body["dry_run"] = False
        real = httpx.post(f"{base}/api/v1/workflows/{workflow['id']}/migrate/", json=body, headers=admin, timeout=30)
        assert real.status_code == 200 and real.json()["results"][0]["action"] == "migrate", real.text
        timeline = httpx.get(f"{base}/api/v1/requests/{rid}/timeline/", headers=alice, timeout=30).json()
        actions = [e["action"] for e in timeline]
        assert {"task.retracted", "request.migrated"} <= set(actions)

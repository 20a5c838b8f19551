"""Concurrent decisions on the embedded default (SQLite, daphne) answer as on PostgreSQL: one wins, the rest 409."""

import threading

import httpx
import pytest

from core.tests.servers import embedded_server, login

PURCHASE = {
    "workflow": "purchase-request",
    "title": "Laptops",
    "submit": True,
    "data": {"amount": 20000, "vendor": "Contoso", "justification": "New hires"},
}


@pytest.mark.integration
def test_three_approves_and_three_rejects_at_once_on_sqlite_give_one_decision_and_409s(tmp_path):
    with embedded_server(tmp_path) as (base, _env):
        created = httpx.post(f"{base}/api/v1/requests/", json=PURCHASE, headers=login(base, "alice@acme.example"))
        assert created.status_code == 201, created.text
        manager = login(base, "mark@acme.example")
        tasks = httpx.get(f"{base}/api/v1/tasks/", params={"status": "pending"}, headers=manager).json()["results"]
        (task,) = [t for t in tasks if t["request"] == created.json()["id"]]
        calls = [("approve", {"comment": "ok"})] * 3 + [("reject", {"comment": "no"})] * 3
        barrier = threading.Barrier(len(calls))
        answers = [None] * len(calls)

        def decide(i, verb, body):
            with httpx.Client(base_url=base, headers=manager, timeout=60) as client:
                barrier.wait()
                answers[i] = client.post(f"/api/v1/tasks/{task['id']}/{verb}/", json=body)

        threads = [threading.Thread(target=decide, args=(i, *call)) for i, call in enumerate(calls)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        codes = sorted(a.status_code for a in answers)
        assert codes == [200, 409, 409, 409, 409, 409], [a.text for a in answers]
        assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {"task_closed"}
        (winner,) = [verb for (verb, _), a in zip(calls, answers, strict=True) if a.status_code == 200]
        final = httpx.get(f"{base}/api/v1/requests/{created.json()['id']}/", headers=login(base, "alice@acme.example"))
        assert final.json()["status"] == ("rejected" if winner == "reject" else "pending")

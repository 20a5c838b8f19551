"""Signed action links in task e-mails (issue 16.1): the page, the decision, every refused link."""

import datetime as dt
import re

import pytest
from django.core import mail, signing
from django.test import Client

from approvals.action_links import SALT, expiry_of
from approvals.models import Assignment, TaskStatus
from approvals.tests.test_engine import delegate, open_task, status, submit
from auditlogs.models import AuditLog
from core.testing import api_client
from notifications.models import Notification
from requests.tests.factories import People, make_flow, role_step, user_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def p(org):
    return People(org)


def link_of(user) -> str:
    note = Notification.objects.filter(recipient=user, kind="task_assigned").latest("created_at")
    return "/" + note.data["action_url"].split("://", 1)[1].split("/", 1)[1]


def browser():
    return Client(enforce_csrf_checks=True)


def post(client, path, decision, comment=""):
    page = client.get(path)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    return client.post(path, {"csrfmiddlewaretoken": token, "decision": decision, "comment": comment})


def test_the_link_shows_the_request_and_approves_once(org, p):
    v = make_flow(org, [user_step(1, "Manager", p.mark), user_step(2, "Legal", p.lena)])
    rid = submit(p.alice, v, data={"amount": 4200, "vendor": "Dell"}, title="Laptop")["id"]
    path = link_of(p.mark)
    client = browser()
    page = client.get(path)
    html = page.content.decode()
    assert page.status_code == 200 and "Laptop" in html and "4200" in html and p.alice.email in html
    assert "<script" not in html and "default-src 'none'" in page["Content-Security-Policy"]
    assert page["Referrer-Policy"] == "same-origin"
    assert open_task(rid).step.name == "Manager"  # GET never acts

    done = post(client, path, "approve")
    assert done.status_code == 200 and "Decision recorded" in done.content.decode()
    assert open_task(rid).step.name == "Legal"
    row = AuditLog.objects.get(action="task.approved")
    assert row.actor_id == p.mark.pk and row.changes["via"] == "email_link"

    again = browser().get(path)  # replay
    assert again.status_code == 409 and 'data-reason="used"' in again.content.decode()
    replay = browser().post(path, {"decision": "approve"})  # without CSRF: refused before anything
    assert replay.status_code == 403
    assert AuditLog.objects.filter(action="task.approved").count() == 1


def test_reject_needs_a_comment_and_the_page_says_so(org, p):
    v = make_flow(org, [user_step(1, "Manager", p.mark)])
    rid = submit(p.alice, v)["id"]
    path = link_of(p.mark)
    r = post(browser(), path, "reject")
    assert r.status_code == 400 and "A comment is required" in r.content.decode()
    assert status(rid) == "pending"
    r = post(browser(), path, "reject", "too expensive")
    assert r.status_code == 200 and status(rid) == "rejected"


def test_tampered_expired_and_superseded_links_change_nothing(org, p, settings):
    v = make_flow(org, [role_step(1, "Finance", "finance_approver", mode="all")])
    rid = submit(p.alice, v)["id"]
    fiona, frank = link_of(p.fiona), link_of(p.frank)

    tampered = fiona[:-6] + ("A" if fiona[-6] != "A" else "B") + fiona[-5:]
    r = browser().get(tampered)
    assert r.status_code == 400 and 'data-reason="invalid"' in r.content.decode()

    a = Assignment.objects.get(task__request_id=rid, assignee=p.fiona)
    past = {"a": str(a.pk), "o": str(org.pk), "r": 1, "x": int((dt.datetime.now(dt.UTC)).timestamp()) - 1}
    r = browser().get(f"/act/{signing.dumps(past, salt=SALT, compress=True)}/")
    assert r.status_code == 410 and 'data-reason="expired"' in r.content.decode()

    task = open_task(rid)  # frank is reassigned away: his link is superseded
    api_client(p.admin).post(
        f"/api/v1/tasks/{task.pk}/reassign/", {"user": str(p.carl.pk), "from_user": str(p.frank.pk)}, format="json"
    )
    r = browser().get(frank)
    assert r.status_code == 409 and 'data-reason="superseded"' in r.content.decode()

    api_client(p.alice).post(f"/api/v1/requests/{rid}/withdraw/", format="json")
    r = browser().get(fiona)
    assert r.status_code == 409 and 'data-reason="superseded"' in r.content.decode()
    assert not Assignment.objects.filter(task__request_id=rid).exclude(decision="").exists()
    assert Assignment.objects.get(pk=a.pk).decision == ""


def test_expiry_is_the_due_time_plus_seven_days_at_most_thirty(org, p):
    v = make_flow(org, [user_step(1, "Manager", p.mark)])
    task = open_task(submit(p.alice, v)["id"])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    task.due_at = now + dt.timedelta(days=2)
    assert expiry_of(task, now=now) == now + dt.timedelta(days=9)
    task.due_at = now + dt.timedelta(days=40)
    assert expiry_of(task, now=now) == now + dt.timedelta(days=30)
    task.due_at = None
    assert expiry_of(task, now=now) == now + dt.timedelta(days=30)


def test_a_delegates_link_records_acting_for_and_self_approval_still_holds(org, p):
    v = make_flow(org, [user_step(1, "Manager", p.mark)])
    delegate(p.mark, p.bob)  # before the task exists: routing gives bob the place, acting for mark
    rid = submit(p.alice, v)["id"]
    r = post(browser(), link_of(p.bob), "approve")
    assert r.status_code == 200, r.content.decode()[:500]
    row = AuditLog.objects.get(action="task.approved")
    assert row.changes["on_behalf_of"] == str(p.mark.pk) and row.changes["via"] == "email_link"
    assert status(rid) == "approved"


def test_the_task_email_button_is_the_signed_page(org, p, django_capture_on_commit_callbacks):
    v = make_flow(org, [user_step(1, "Manager", p.mark)])
    with django_capture_on_commit_callbacks(execute=True):
        submit(p.alice, v)
    message = next(m for m in mail.outbox if p.mark.email in m.to)
    assert "/act/" in message.body and "Review and decide" in message.body
    assert "/act/" in message.alternatives[0][0]
    note = Notification.objects.get(recipient=p.mark, kind="task_assigned")
    assert note.data["action_url"] in message.body
    assert open_task(note.request_id).status == TaskStatus.PENDING


def test_link_use_is_rate_limited_per_address(org, p, settings):
    settings.ACTION_LINK_RATE_PER_IP = "2/m"
    v = make_flow(org, [user_step(1, "Manager", p.mark)])
    rid = submit(p.alice, v)["id"]
    path = link_of(p.mark)
    client = browser()
    assert [client.get(path).status_code for _ in range(2)] == [200, 200]
    r = client.get(path)
    assert r.status_code == 429 and r["Retry-After"] == "60" and 'data-reason="rate_limited"' in r.content.decode()
    assert status(rid) == "pending"

"""The e-mail action link in real Chromium (issue 16.1): open it from the outbox, approve, replay."""

import pytest
from django.core import mail

from approvals.models import ApprovalTask, TaskStatus
from core.testing import api_client, make_org, make_user
from core.tests.browser import chromium_page, needs_chromium
from requests.models import Request
from requests.tests.factories import make_flow, user_step

pytestmark = [pytest.mark.browser, needs_chromium]


def test_approve_from_the_email_link_then_the_replay_is_refused(transactional_db, live_server, settings, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop runs in this thread
    settings.SITE_URL = live_server.url
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    org = make_org("acme-links", name="Acme Links")
    mark = make_user(org, "mark@links.example", first_name="Mark")
    lena = make_user(org, "lena@links.example")
    alice = make_user(org, "alice@links.example", roles=["requester"], manager=mark)
    version = make_flow(org, [user_step(1, "Manager", mark), user_step(2, "Legal", lena)], key="buy")
    mail.outbox = []
    r = api_client(alice).post(
        "/api/v1/requests/",
        {"workflow": "buy", "title": "Standing desk", "data": {"amount": 640, "vendor": "Ergo"}, "submit": True},
        format="json",
    )
    assert r.status_code == 201, r.content
    rid = r.json()["id"]
    message = next(m for m in mail.outbox if mark.email in m.to)
    link = next(word for word in message.body.split() if "/act/" in word)
    assert link.startswith(live_server.url) and version.number == 1

    with chromium_page("action-link-last", full_page=False) as page:
        page.set_viewport_size({"width": 390, "height": 844})  # a phone
        page.goto(link)
        assert page.locator("#title").inner_text() == "Standing desk"
        assert "640" in page.locator("#data").inner_text()
        assert Request.objects.get(pk=rid).current_stage == 1  # opening the page changed nothing
        page.click("#approve")
        page.wait_for_selector("#done")
        assert "Approved" in page.locator("#done").inner_text()
        assert page.locator("#request-status").inner_text() == "pending"
        task = ApprovalTask.objects.get(request_id=rid, status=TaskStatus.PENDING)
        assert task.step.name == "Legal"  # the request advanced

        response = page.goto(link)  # replay
        assert response.status == 409
        assert page.locator("#refused").get_attribute("data-reason") == "used"
    assert ApprovalTask.objects.filter(request_id=rid, status=TaskStatus.APPROVED).count() == 1

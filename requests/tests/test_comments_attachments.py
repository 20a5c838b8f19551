import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from approvals.models import ApprovalTask
from auditlogs.models import AuditLog
from core.testing import api_client, error_code
from notifications.models import Notification
from requests.models import Attachment, Comment
from requests.services import sanitize_filename
from requests.tests.factories import People, make_flow, user_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def p(org):
    return People(org)


@pytest.fixture
def rid(org, p):
    v = make_flow(org, [user_step(1, "M", p.mark)])
    return (
        api_client(p.alice)
        .post(
            "/api/v1/requests/",
            {"workflow": v.definition.key, "title": "T", "data": {"amount": 1, "vendor": "v"}, "submit": True},
            format="json",
        )
        .json()["id"]
    )


def test_comments_by_participants(p, rid):
    r = api_client(p.mark).post(f"/api/v1/requests/{rid}/comments/", {"body": "Which model?"}, format="json")
    assert r.status_code == 201 and r.json()["body"] == "Which model?"
    assert Notification.objects.filter(kind="request_commented", recipient=p.alice).count() == 1
    assert not Notification.objects.filter(kind="request_commented", recipient=p.mark).exists()
    assert AuditLog.objects.filter(action="comment.added").count() == 1
    r = api_client(p.bob).post(f"/api/v1/requests/{rid}/comments/", {"body": "spam"}, format="json")
    assert r.status_code == 404
    r = api_client(p.alice).post(f"/api/v1/requests/{rid}/comments/", {"body": ""}, format="json")
    assert r.status_code == 400
    assert Comment.objects.count() == 1
    listed = api_client(p.alice).get(f"/api/v1/requests/{rid}/comments/").json()
    assert [c["body"] for c in listed] == ["Which model?"]
    assert api_client(p.alice).get(f"/api/v1/requests/{rid}/").json()["comments"][0]["body"] == "Which model?"


def upload(user, rid, name="quote.pdf", content=b"%PDF-1.4 hello", ctype="application/pdf", **extra):
    f = SimpleUploadedFile(name, content, content_type=ctype)
    return api_client(user).post(f"/api/v1/requests/{rid}/attachments/", {"file": f}, format="multipart", **extra)


def test_attachment_upload_and_download(p, rid):
    content = b"%PDF-1.4 quote"
    r = upload(p.alice, rid, name="../../etc/Quote <final>.pdf", content=content)
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["size"] == len(content)
    assert body["name"] == "Quote _final_.pdf"
    att = Attachment.objects.get()
    assert "etc" not in att.file.name and att.file.name.endswith(str(att.id))
    assert AuditLog.objects.filter(action="attachment.added").count() == 1
    d = api_client(p.mark).get(body["download_url"])
    assert d.status_code == 200
    assert b"".join(d.streaming_content) == content
    assert d["Content-Disposition"].startswith("attachment")
    assert d["X-Content-Type-Options"] == "nosniff"
    assert api_client(p.bob).get(body["download_url"]).status_code == 404
    assert api_client(p.alice).get(f"/api/v1/requests/{rid}/attachments/").json()[0]["id"] == body["id"]


@override_settings(ATTACHMENT_MAX_BYTES=10)
def test_attachment_limits(p, rid):
    r = upload(p.alice, rid, content=b"x" * 11)
    assert r.status_code == 400 and error_code(r) == "validation_error" and "file" in r.json()["error"]["details"]
    r = upload(p.alice, rid, name="a.html", content=b"<b>", ctype="text/html")
    assert r.status_code == 400
    r = upload(p.bob, rid, content=b"tiny")
    assert r.status_code == 404
    assert Attachment.objects.count() == 0


def test_sanitize_filename():
    assert sanitize_filename("C:\\Users\\x\\evil.exe") == "evil.exe"
    assert sanitize_filename("\x00\r\nname.txt") == "_name.txt"
    assert sanitize_filename("...") == "file"
    assert len(sanitize_filename("a" * 500 + ".pdf")) <= 200


def test_idempotent_comment(p, rid):
    c = api_client(p.alice)
    r1 = c.post(f"/api/v1/requests/{rid}/comments/", {"body": "once"}, format="json", HTTP_IDEMPOTENCY_KEY="c1")
    r2 = c.post(f"/api/v1/requests/{rid}/comments/", {"body": "once"}, format="json", HTTP_IDEMPOTENCY_KEY="c1")
    assert r1.json() == r2.json() and Comment.objects.count() == 1


def test_preview_route(org, p):
    from requests.tests.factories import purchase_flow

    v = purchase_flow(org)
    c = api_client(p.alice)
    r = c.post(
        "/api/v1/requests/preview-route/",
        {"workflow": v.definition.key, "data": {"amount": 3000, "vendor": "x"}},
        format="json",
    )
    assert r.status_code == 200, r.json()
    stages = r.json()["stages"]
    assert [s["stage"] for s in stages] == [1, 2, 3]
    assert stages[0]["steps"][0]["approvers"][0]["user"] == str(p.mark.pk)
    legal = next(s for s in stages[1]["steps"] if s["name"] == "Legal review")
    assert legal["skipped"] is True and legal["approvers"] == []
    finance = next(s for s in stages[1]["steps"] if s["name"] == "Finance review")
    assert {a["user"] for a in finance["approvers"]} == {str(p.fiona.pk), str(p.frank.pk)}
    assert stages[2]["skipped"] is True
    r = c.post(
        "/api/v1/requests/preview-route/",
        {"workflow": v.definition.key, "data": {"amount": 20000, "vendor": "x"}},
        format="json",
    )
    assert not any(s["skipped"] for s in r.json()["stages"])
    from requests.models import Request

    assert Request.objects.count() == 0 and ApprovalTask.objects.count() == 0
    assert c.post("/api/v1/requests/preview-route/", {"workflow": "nope"}, format="json").status_code == 404

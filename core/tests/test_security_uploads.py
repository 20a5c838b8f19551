"""Uploads (OWASP API4/API8): size and type limits, sanitized names, no path traversal, and no
inline rendering of anything uploaded; refused uploads store nothing."""

from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile

from core.testing import api_client, error_code
from core.tests.authz_world import build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def w():
    return build_world()


def upload(w, name, content, content_type, actor="requester"):
    request = w.objs["request"]
    return api_client(w.users[actor]).post(
        f"/api/v1/requests/{request.pk}/attachments/",
        {"file": SimpleUploadedFile(name, content, content_type=content_type)},
        format="multipart",
    )


def stored_files(w) -> set[str]:
    root = Path(django_settings.MEDIA_ROOT) / "attachments" / str(w.objs["acme"].pk) / str(w.objs["request"].pk)
    return {p.name for p in root.glob("*")} if root.exists() else set()


def test_size_limit_refuses_and_stores_nothing(w, settings):
    from requests.models import Attachment

    settings.ATTACHMENT_MAX_BYTES = 16
    before_rows, before_files = Attachment.objects.count(), stored_files(w)
    response = upload(w, "big.pdf", b"%PDF" + b"x" * 64, "application/pdf")
    assert response.status_code == 400
    assert "file" in response.json()["error"]["details"]
    assert Attachment.objects.count() == before_rows and stored_files(w) == before_files
    assert upload(w, "empty.pdf", b"", "application/pdf").status_code == 400


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("page.html", "text/html"),
        ("logo.svg", "image/svg+xml"),
        ("x.js", "application/javascript"),
        ("x.xhtml", "application/xhtml+xml"),
        ("x.bin", "application/octet-stream"),
        ("x", ""),
    ],
)
def test_active_content_types_are_refused(w, name, content_type):
    from requests.models import Attachment

    before = Attachment.objects.count()
    response = upload(w, name, b"<svg onload=alert(1)>", content_type)
    assert response.status_code == 400, response.content
    assert error_code(response) == "validation_error"
    assert Attachment.objects.count() == before


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\win.ini.txt", "win.ini.txt"),
        ('a"\r\nSet-Cookie: x=1;.txt', None),  # header injection attempt: any safe name
        ("<script>alert(1)</script>.txt", None),
        ("/absolute/path.txt", "path.txt"),
        ("...", "file"),
    ],
)
def test_names_are_sanitized_and_the_stored_path_is_ours(w, name, expected):
    from requests.models import Attachment

    response = upload(w, name, b"hello", "text/plain")
    assert response.status_code == 201, response.content
    att = Attachment.objects.get(pk=response.json()["id"])
    if expected is not None:
        assert att.name == expected
    assert not set(att.name) & set('/\\\r\n"<>;'), att.name
    assert "/" not in att.name and "\\" not in att.name and "\r" not in att.name and "\n" not in att.name
    # The file on disk is named by the server (org/request/uuid), inside MEDIA_ROOT.
    assert att.file.name == f"attachments/{att.organization_id}/{att.request_id}/{att.pk}"
    media = Path(django_settings.MEDIA_ROOT).resolve()
    assert media in Path(att.file.path).resolve().parents


def test_downloads_are_never_rendered_inline(w):
    """Even HTML declared as text/plain comes back as a download, unsniffable and sandboxed."""
    response = upload(w, "invoice.txt", b"<html><script>alert(document.cookie)</script></html>", "text/plain")
    assert response.status_code == 201
    att_id = response.json()["id"]
    download = api_client(w.users["requester"]).get(
        f"/api/v1/requests/{w.objs['request'].pk}/attachments/{att_id}/download/"
    )
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment;")
    assert "invoice.txt" in download["Content-Disposition"]
    assert download["Content-Type"].startswith("text/plain")
    assert download["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download["Content-Security-Policy"]
    assert b"".join(download.streaming_content).startswith(b"<html>")


def test_download_of_another_requests_attachment_is_404(w):
    """An attachment id is only found through the request it belongs to (no IDOR via a visible request)."""
    from requests import services as request_services

    own_draft = w.objs["draft"]
    other = request_services.attachment_add(
        actor=w.users["requester"],
        request_id=w.objs["request"].pk,
        file=SimpleUploadedFile("q.pdf", b"%PDF-1.4", content_type="application/pdf"),
    )
    response = api_client(w.users["requester"]).get(f"/api/v1/requests/{own_draft.pk}/attachments/{other.pk}/download/")
    assert response.status_code == 404


def test_oversized_json_body_is_refused_with_the_envelope(w):
    body = {"body": "x" * (django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)}
    response = api_client(w.users["requester"]).post(
        f"/api/v1/requests/{w.objs['request'].pk}/comments/", body, format="json"
    )
    assert response.status_code == 413, response.status_code
    assert error_code(response) == "payload_too_large"

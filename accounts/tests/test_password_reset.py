"""Password reset (issue 18.1): the e-mail from the locmem outbox, the link's page, the refusals."""

import re
import statistics
import time

import pytest
from django.core import mail
from django.test import Client
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import SecurityPolicy
from auditlogs.models import AuditLog
from core.testing import PASSWORD, api_client, error_code

pytestmark = pytest.mark.django_db

RESET = "/api/v1/auth/password/reset/"
CONFIRM = "/api/v1/auth/password/reset/confirm/"
LOGIN = "/api/v1/auth/login/"
NEW = "Fresh-Reset-Pass-2031"
LINK = re.compile(r"http://[^\s\"<]+/account/password/reset/(?P<uid>[^/]+)/(?P<token>[^/]+)/")


def ask_reset(email, capture):
    with capture(execute=True):
        return api_client().post(RESET, {"email": email}, format="json")


def link_from_outbox():
    [message] = [m for m in mail.outbox if m.subject == "Reset your password"]
    match = LINK.search(message.body)
    assert match, message.body
    return match


def login(email, password):
    return api_client().post(LOGIN, {"email": email, "password": password}, format="json")


def test_reset_by_api_sets_the_password_ends_sessions_and_tells_the_user(requester, django_capture_on_commit_callbacks):
    session = login(requester.email, PASSWORD).json()
    response = ask_reset(requester.email.upper(), django_capture_on_commit_callbacks)
    assert response.status_code == 202 and response.content == b""
    match = link_from_outbox()
    assert mail.outbox[0].to == [requester.email]
    assert match.group(0) in mail.outbox[0].alternatives[0][0]  # the HTML part carries it too

    with django_capture_on_commit_callbacks(execute=True):
        done = api_client().post(
            CONFIRM, {"uid": match["uid"], "token": match["token"], "new_password": NEW}, format="json"
        )
    assert done.status_code == 204
    assert login(requester.email, NEW).status_code == 200
    assert login(requester.email, PASSWORD).status_code == 401
    # Every refresh token issued before is dead, and so is the access token (token version).
    assert api_client().post("/api/v1/auth/refresh/", {"refresh": session["refresh"]}, format="json").status_code == 401
    me = api_client()
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {session['access']}")
    assert me.get("/api/v1/auth/me/").status_code == 401
    assert [m.subject for m in mail.outbox] == ["Reset your password", "Your password was changed"]
    actions = list(AuditLog.objects.filter(target_id=str(requester.pk)).values_list("action", flat=True))
    assert "auth.password_reset_requested" in actions and "auth.password_reset" in actions


def test_a_link_works_once(requester, django_capture_on_commit_callbacks):
    ask_reset(requester.email, django_capture_on_commit_callbacks)
    match = link_from_outbox()
    body = {"uid": match["uid"], "token": match["token"], "new_password": NEW}
    assert api_client().post(CONFIRM, body, format="json").status_code == 204
    again = api_client().post(CONFIRM, {**body, "new_password": "Yet-Another-Pass-2032"}, format="json")
    assert again.status_code == 400 and error_code(again) == "invalid_token"
    assert login(requester.email, NEW).status_code == 200


def test_an_expired_link_is_refused_and_changes_nothing(requester, settings, django_capture_on_commit_callbacks):
    ask_reset(requester.email, django_capture_on_commit_callbacks)
    match = link_from_outbox()
    settings.PASSWORD_RESET_TIMEOUT = -1  # every token is past its validity
    response = api_client().post(
        CONFIRM, {"uid": match["uid"], "token": match["token"], "new_password": NEW}, format="json"
    )
    assert response.status_code == 400 and error_code(response) == "invalid_token"
    assert login(requester.email, PASSWORD).status_code == 200
    assert not AuditLog.objects.filter(action="auth.password_reset").exists()


def test_a_link_dies_with_a_password_change(requester, django_capture_on_commit_callbacks):
    ask_reset(requester.email, django_capture_on_commit_callbacks)
    match = link_from_outbox()
    client = api_client(requester)
    assert (
        client.post(
            "/api/v1/auth/password/change/", {"old_password": PASSWORD, "new_password": "Changed-Meanwhile-2031"}
        ).status_code
        == 204
    )
    response = api_client().post(
        CONFIRM, {"uid": match["uid"], "token": match["token"], "new_password": NEW}, format="json"
    )
    assert error_code(response) == "invalid_token"


@pytest.mark.parametrize(
    "body",
    [
        {"uid": "not-base64!", "token": "x", "new_password": NEW},
        {"uid": "bm9ib2R5", "token": "1-2", "new_password": NEW},
        {"uid": "", "token": "", "new_password": ""},
        {"uid": "x" * 65, "token": "y", "new_password": NEW},
    ],
)
def test_garbage_links_are_a_400_in_the_envelope(requester, body):
    response = api_client().post(CONFIRM, body, format="json")
    assert response.status_code == 400
    assert error_code(response) in {"invalid_token", "validation_error"}


def test_the_new_password_meets_the_policy(requester, django_capture_on_commit_callbacks):
    SecurityPolicy.objects.create(organization=requester.organization, password_history=3)
    ask_reset(requester.email, django_capture_on_commit_callbacks)
    match = link_from_outbox()
    for weak in ["short", "password1234", PASSWORD]:  # too short, common, the current one (history)
        response = api_client().post(
            CONFIRM, {"uid": match["uid"], "token": match["token"], "new_password": weak}, format="json"
        )
        assert response.status_code == 400 and "new_password" in response.json()["error"]["details"]
    # The link is still good after refusals.
    response = api_client().post(
        CONFIRM, {"uid": match["uid"], "token": match["token"], "new_password": NEW}, format="json"
    )
    assert response.status_code == 204


def test_unknown_and_inactive_addresses_get_the_same_202_and_no_mail(requester, django_capture_on_commit_callbacks):
    from accounts.services import user_deactivate

    user_deactivate(actor=None, user=requester)
    for email in ["nobody@acme-test.test", requester.email]:
        response = ask_reset(email, django_capture_on_commit_callbacks)
        assert response.status_code == 202 and response.content == b""
    assert mail.outbox == []


def test_enumeration_timing_is_the_same_for_known_and_unknown(requester, settings, django_capture_on_commit_callbacks):
    settings.PASSWORD_RESET_MIN_MS = 250
    settings.PASSWORD_RESET_RATE_PER_IP = settings.PASSWORD_RESET_RATE_PER_ACCOUNT = "1000/m"
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    for i in range(4):
        for kind, email in [("known", requester.email), ("unknown", f"ghost{i}@acme-test.test")]:
            started = time.monotonic()
            assert ask_reset(email, django_capture_on_commit_callbacks).status_code == 202
            timings[kind].append(time.monotonic() - started)
    known, unknown = statistics.median(timings["known"]), statistics.median(timings["unknown"])
    assert min(known, unknown) >= 0.25
    assert abs(known - unknown) < 0.05, timings
    assert len(mail.outbox) == 4


def test_rate_limited_per_account_and_per_ip(requester, settings, django_capture_on_commit_callbacks):
    settings.PASSWORD_RESET_RATE_PER_ACCOUNT = "2/h"
    for _ in range(2):
        assert ask_reset(requester.email, django_capture_on_commit_callbacks).status_code == 202
    refused = ask_reset(requester.email, django_capture_on_commit_callbacks)
    assert refused.status_code == 429 and error_code(refused) == "rate_limited"
    assert refused["Retry-After"] == "3600"
    assert len(mail.outbox) == 2
    # The same limit for an address nobody has: a 429 says nothing about the account.
    for _ in range(2):
        ask_reset("ghost@acme-test.test", django_capture_on_commit_callbacks)
    assert ask_reset("ghost@acme-test.test", django_capture_on_commit_callbacks).status_code == 429

    settings.PASSWORD_RESET_RATE_PER_IP = "3/m"
    statuses = [ask_reset(f"other{i}@x.test", django_capture_on_commit_callbacks).status_code for i in range(4)]
    assert statuses == [202, 202, 202, 429]


def test_confirm_is_rate_limited_per_link(requester, settings):
    settings.PASSWORD_RESET_CONFIRM_RATE_PER_ACCOUNT = "3/m"
    body = {"uid": "bm9ib2R5", "token": "1-2", "new_password": NEW}
    statuses = [api_client().post(CONFIRM, body, format="json").status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]


def test_the_page_at_the_link_sets_the_password_without_an_api_client(requester, django_capture_on_commit_callbacks):
    ask_reset(requester.email, django_capture_on_commit_callbacks)
    match = link_from_outbox()
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(match.group(0))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<script" not in html and "http" not in html.split("<body>")[1]  # no external asset, no script
    assert "default-src 'none'" in page["Content-Security-Policy"]
    assert page["Referrer-Policy"] == "same-origin"
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1]

    differ = browser.post(match.group(0), {"csrfmiddlewaretoken": csrf, "new_password": NEW, "new_password2": "x"})
    assert differ.status_code == 400 and "differ" in differ.content.decode()
    weak = browser.post(match.group(0), {"csrfmiddlewaretoken": csrf, "new_password": "abc", "new_password2": "abc"})
    assert weak.status_code == 400 and "too short" in weak.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        done = browser.post(match.group(0), {"csrfmiddlewaretoken": csrf, "new_password": NEW, "new_password2": NEW})
    assert done.status_code == 200 and 'id="done"' in done.content.decode()
    assert login(requester.email, NEW).status_code == 200
    assert mail.outbox[-1].subject == "Your password was changed"

    used = browser.get(match.group(0))
    assert used.status_code == 400 and 'id="invalid"' in used.content.decode()


def test_the_page_refuses_a_post_without_csrf(requester, django_capture_on_commit_callbacks):
    ask_reset(requester.email, django_capture_on_commit_callbacks)
    match = link_from_outbox()
    response = Client(enforce_csrf_checks=True).post(match.group(0), {"new_password": NEW, "new_password2": NEW})
    assert response.status_code == 403
    assert login(requester.email, PASSWORD).status_code == 200


def test_reset_revokes_every_refresh_token(requester, django_capture_on_commit_callbacks):
    for _ in range(3):
        login(requester.email, PASSWORD)
    ask_reset(requester.email, django_capture_on_commit_callbacks)
    match = link_from_outbox()
    api_client().post(CONFIRM, {"uid": match["uid"], "token": match["token"], "new_password": NEW}, format="json")
    outstanding = OutstandingToken.objects.filter(user=requester)
    assert outstanding.count() == 3
    assert BlacklistedToken.objects.filter(token__in=outstanding).count() == 3

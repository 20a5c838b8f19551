"""The reset link's page in real Chromium: a person sets a new password with the form alone.

A browser sends ``Origin: null`` on a form POST from a page whose referrer policy is
``no-referrer``, which Django's CSRF check refuses; only a real browser shows that.
"""

import pytest
from django.core import mail

from core.testing import PASSWORD, api_client, make_org, make_user
from core.tests.browser import chromium_page, needs_chromium

from .test_password_reset import LINK, LOGIN, NEW, RESET

pytestmark = [pytest.mark.browser, needs_chromium]


def test_the_reset_page_sets_the_password_in_a_browser(transactional_db, live_server, settings, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop runs in this thread
    settings.SITE_URL = live_server.url
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    org = make_org("acme-reset-browser", name="Acme Reset")
    user = make_user(org, "forgetful@reset.example", roles=["requester"])
    mail.outbox = []
    assert api_client().post(RESET, {"email": user.email}, format="json").status_code == 202
    [message] = [m for m in mail.outbox if m.subject == "Reset your password"]
    link = LINK.search(message.body).group(0)
    assert link.startswith(live_server.url)

    with chromium_page("password-reset-last", full_page=False) as page:
        page.goto(link)
        page.fill("#new_password", NEW)
        page.fill("#new_password2", NEW)
        page.click("button[type=submit]")
        page.wait_for_selector("#done")
        assert "Password changed" in page.content()
    login = lambda password: api_client().post(LOGIN, {"email": user.email, "password": password}, format="json")  # noqa: E731
    assert login(NEW).status_code == 200
    assert login(PASSWORD).status_code == 401

"""Account security under concurrency (issue 18): real threads, each with its own PostgreSQL connection.

A reset link confirmed N times at once sets one password; a TOTP code sent N times at once opens
one login; N failed logins at once all count toward the lockout.
"""

from datetime import timedelta

import pyotp
import pytest
from django.contrib.auth.tokens import default_token_generator
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import mfa
from accounts.models import LoginSession, SecurityPolicy, TOTPDevice, User
from auditlogs.models import AuditLog
from core.testing import PASSWORD, api_client, make_org, make_user, race

N = 8
pytestmark = pytest.mark.django_db(transaction=True)


def test_one_reset_link_confirmed_at_once_sets_one_password(settings):
    settings.PASSWORD_RESET_CONFIRM_RATE_PER_ACCOUNT = settings.PASSWORD_RESET_CONFIRM_RATE_PER_IP = "1000/m"
    user = make_user(make_org("race-reset"), "reset@race.test")
    uid, token = urlsafe_base64_encode(force_bytes(user.pk)), default_token_generator.make_token(user)

    def confirm(i):
        body = {"uid": uid, "token": token, "new_password": f"Racing-Pass-{i}-2031"}
        return api_client().post("/api/v1/auth/password/reset/confirm/", body, format="json").status_code

    statuses = race(confirm, N)
    assert sorted(statuses) == [204] + [400] * (N - 1), statuses
    winner = statuses.index(204)
    assert User.objects.get(pk=user.pk).check_password(f"Racing-Pass-{winner}-2031")
    assert AuditLog.objects.filter(action="auth.password_reset").count() == 1


def test_one_totp_code_sent_at_once_opens_one_login(settings):
    settings.MFA_RATE_PER_ACCOUNT = settings.MFA_RATE_PER_IP = "1000/m"
    user = make_user(make_org("race-totp"), "totp@race.test")
    secret = mfa.totp_begin(user=user)["secret"]
    mfa.totp_confirm(user=user, code=pyotp.TOTP(secret).now())
    TOTPDevice.objects.filter(user=user).update(last_counter=0)  # the confirmation's step is free again
    tokens = [mfa.mfa_token_for(user) for _ in range(N)]
    code = pyotp.TOTP(secret).now()

    def second_step(i):
        body = {"mfa_token": tokens[i], "code": code}
        return api_client().post("/api/v1/auth/login/2fa/", body, format="json").status_code

    statuses = race(second_step, N)
    # The others: the code is spent (400), or the winner's login already spent their mfa_token (401).
    assert statuses.count(200) == 1 and set(statuses) <= {200, 400, 401}, statuses
    assert LoginSession.objects.filter(user=user).count() == 1


def test_failed_logins_at_once_all_count_toward_the_lockout(settings):
    settings.LOGIN_RATE_PER_ACCOUNT = settings.LOGIN_RATE_PER_IP = "1000/m"
    org = make_org("race-lock")
    user = make_user(org, "lock@race.test")
    SecurityPolicy.objects.create(organization=org, lockout_threshold=N, lockout_minutes=5)

    def wrong(i):
        body = {"email": user.email, "password": "wrong"}
        return api_client().post("/api/v1/auth/login/", body, format="json").status_code

    assert race(wrong, N) == [401] * N
    locked_until = User.objects.get(pk=user.pk).locked_until
    assert locked_until is not None and locked_until - timezone.now() <= timedelta(minutes=5)
    response = api_client().post("/api/v1/auth/login/", {"email": user.email, "password": PASSWORD}, format="json")
    assert response.status_code == 423

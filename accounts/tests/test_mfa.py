"""Two-factor authentication with TOTP (issue 18.2): codes computed here with pyotp, as an app would."""

import re
from datetime import timedelta

import pyotp
import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import LoginSession, RecoveryCode, SecurityPolicy, TOTPDevice
from auditlogs.models import AuditLog
from core.testing import PASSWORD, api_client, error_code

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login/"
SECOND = "/api/v1/auth/login/2fa/"
TOTP = "/api/v1/auth/2fa/totp/"
CONFIRM = "/api/v1/auth/2fa/totp/confirm/"


def login(email, password=PASSWORD):
    return api_client().post(LOGIN, {"email": email, "password": password}, format="json")


def bearer(access):
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def code_at(secret, seconds=0):
    return pyotp.TOTP(secret).at(timezone.now() + timedelta(seconds=seconds))


def enrol(user):
    """Turn 2FA on for ``user`` through the API; (secret, recovery codes)."""
    access = login(user.email).json()["access"]
    begun = bearer(access).post(TOTP)
    assert begun.status_code == 201
    secret = begun.json()["secret"]
    confirmed = bearer(access).post(CONFIRM, {"code": code_at(secret)}, format="json")
    assert confirmed.status_code == 200, confirmed.content
    return secret, confirmed.json()["recovery_codes"]


def previous_step(device):
    """Forget the last accepted step, as if the code had been used 30 s ago (the next one is new)."""
    TOTPDevice.objects.filter(pk=device.pk).update(last_counter=device.last_counter - 1)


def test_enrolment_returns_secret_uri_and_qr_then_confirm_gives_ten_recovery_codes(requester):
    access = login(requester.email).json()["access"]
    begun = bearer(access).post(TOTP).json()
    assert re.fullmatch(r"[A-Z2-7]{32}", begun["secret"])
    assert begun["otpauth_uri"].startswith("otpauth://totp/") and f"secret={begun['secret']}" in begun["otpauth_uri"]
    assert begun["qr_svg"].startswith("<svg") and "http" not in begun["qr_svg"].split("xmlns")[0]
    # Not on before the confirmation: the login still gives tokens.
    assert "access" in login(requester.email).json()

    wrong = bearer(access).post(CONFIRM, {"code": "000000"}, format="json")
    assert wrong.status_code == 400 and error_code(wrong) == "invalid_code"
    codes = bearer(access).post(CONFIRM, {"code": code_at(begun["secret"])}, format="json").json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = list(RecoveryCode.objects.filter(user=requester).values_list("code_hash", flat=True))
    assert len(stored) == 10 and not set(codes) & set(stored)  # hashed, not the codes
    assert AuditLog.objects.filter(action="auth.2fa_enabled", actor=requester).count() == 1
    again = bearer(access).post(TOTP)
    assert again.status_code == 409 and error_code(again) == "2fa_already_on"


def test_login_with_2fa_takes_a_second_step(requester):
    secret, _codes = enrol(requester)
    first = login(requester.email)
    assert first.status_code == 200
    body = first.json()
    assert body["mfa_required"] is True and set(body) == {"mfa_required", "mfa_token"}

    wrong = api_client().post(SECOND, {"mfa_token": body["mfa_token"], "code": "123456"}, format="json")
    assert wrong.status_code == 400 and error_code(wrong) == "invalid_code"
    previous_step(TOTPDevice.objects.get(user=requester))  # the enrolment used this step's code
    done = api_client().post(SECOND, {"mfa_token": body["mfa_token"], "code": code_at(secret)}, format="json")
    assert done.status_code == 200
    tokens = done.json()
    assert {"access", "refresh", "user"} <= set(tokens)
    assert bearer(tokens["access"]).get("/api/v1/auth/me/").status_code == 200
    assert LoginSession.objects.filter(user=requester, method="password+totp").count() == 1
    # The mfa_token worked once: the login it completed spent it.
    reused = api_client().post(SECOND, {"mfa_token": body["mfa_token"], "code": code_at(secret)}, format="json")
    assert reused.status_code == 401 and error_code(reused) == "mfa_token_invalid"


def test_a_code_is_accepted_once(requester):
    secret, _ = enrol(requester)
    device = TOTPDevice.objects.get(user=requester)
    previous_step(device)
    code = code_at(secret)
    first = api_client().post(SECOND, {"mfa_token": login(requester.email).json()["mfa_token"], "code": code})
    assert first.status_code == 200
    replay = api_client().post(SECOND, {"mfa_token": login(requester.email).json()["mfa_token"], "code": code})
    assert replay.status_code == 400 and error_code(replay) == "invalid_code"
    # An older step's code (within the drift window) is a replay too, once a newer one was used.
    older = code_at(secret, -30)
    late = api_client().post(SECOND, {"mfa_token": login(requester.email).json()["mfa_token"], "code": older})
    assert late.status_code == 400
    assert AuditLog.objects.filter(action="auth.2fa_failed").count() == 2


def test_clock_drift_of_one_step_is_accepted_two_are_not(requester):
    secret, _ = enrol(requester)
    token = login(requester.email).json()["mfa_token"]
    too_far = api_client().post(SECOND, {"mfa_token": token, "code": code_at(secret, 65)}, format="json")
    assert too_far.status_code == 400
    ahead = api_client().post(SECOND, {"mfa_token": token, "code": code_at(secret, 30)}, format="json")
    assert ahead.status_code == 200


def test_a_recovery_code_works_once(requester):
    _secret, codes = enrol(requester)
    token = login(requester.email).json()["mfa_token"]
    first = api_client().post(SECOND, {"mfa_token": token, "code": codes[0].upper()}, format="json")
    assert first.status_code == 200, first.content
    again = api_client().post(
        SECOND, {"mfa_token": login(requester.email).json()["mfa_token"], "code": codes[0]}, format="json"
    )
    assert again.status_code == 400
    assert RecoveryCode.objects.filter(user=requester, used_at__isnull=False).count() == 1
    assert AuditLog.objects.filter(action="auth.recovery_code_used").count() == 1


def test_expired_or_forged_mfa_token_is_refused(requester, settings):
    secret, _ = enrol(requester)
    token = login(requester.email).json()["mfa_token"]
    forged = api_client().post(SECOND, {"mfa_token": token[:-2] + "xx", "code": code_at(secret)}, format="json")
    assert forged.status_code == 401 and error_code(forged) == "mfa_token_invalid"
    settings.MFA_TOKEN_SECONDS = -1
    expired = api_client().post(SECOND, {"mfa_token": token, "code": code_at(secret)}, format="json")
    assert expired.status_code == 401 and error_code(expired) == "mfa_token_invalid"


def test_second_step_is_rate_limited_per_account(requester, settings):
    settings.MFA_RATE_PER_ACCOUNT = "3/m"
    enrol(requester)
    token = login(requester.email).json()["mfa_token"]
    statuses = [
        api_client().post(SECOND, {"mfa_token": token, "code": "000000"}, format="json").status_code for _ in range(4)
    ]
    assert statuses == [400, 400, 400, 429]


def test_disable_needs_the_password_and_a_code(requester):
    secret, _ = enrol(requester)
    previous_step(TOTPDevice.objects.get(user=requester))
    token = login(requester.email).json()["mfa_token"]
    access = api_client().post(SECOND, {"mfa_token": token, "code": code_at(secret)}, format="json").json()["access"]
    client = bearer(access)
    no_password = client.delete(TOTP, {"password": "wrong", "code": "000000"}, format="json")
    assert no_password.status_code == 400 and "password" in no_password.json()["error"]["details"]
    replayed = client.delete(TOTP, {"password": PASSWORD, "code": code_at(secret)}, format="json")
    assert replayed.status_code == 400 and TOTPDevice.objects.filter(user=requester).exists()
    previous_step(TOTPDevice.objects.get(user=requester))
    off = client.delete(TOTP, {"password": PASSWORD, "code": code_at(secret)}, format="json")
    assert off.status_code == 204
    assert not TOTPDevice.objects.filter(user=requester).exists() and not RecoveryCode.objects.exists()
    assert "access" in login(requester.email).json()
    assert AuditLog.objects.filter(action="auth.2fa_disabled").count() == 1


def test_org_policy_requiring_2fa(requester):
    SecurityPolicy.objects.create(organization=requester.organization, require_2fa="everyone")
    answer = login(requester.email).json()
    assert answer["mfa_enrolment_required"] is True
    client = bearer(answer["access"])
    refused = client.get("/api/v1/requests/")
    assert refused.status_code == 403 and error_code(refused) == "mfa_enrolment_required"
    assert client.get("/api/v1/auth/me/").status_code == 200  # the auth/ endpoints stay open
    # A refresh keeps the restriction.
    renewed = api_client().post("/api/v1/auth/refresh/", {"refresh": answer["refresh"]}, format="json").json()
    assert bearer(renewed["access"]).get("/api/v1/requests/").status_code == 403
    secret = client.post(TOTP).json()["secret"]
    assert client.post(CONFIRM, {"code": code_at(secret)}, format="json").status_code == 200
    # Turning it off is refused while the organization requires it.
    previous_step(TOTPDevice.objects.get(user=requester))
    kept = client.delete(TOTP, {"password": PASSWORD, "code": code_at(secret)}, format="json")
    assert kept.status_code == 409 and error_code(kept) == "2fa_required"
    previous_step(TOTPDevice.objects.get(user=requester))
    token = login(requester.email).json()["mfa_token"]
    access = api_client().post(SECOND, {"mfa_token": token, "code": code_at(secret)}, format="json").json()["access"]
    assert bearer(access).get("/api/v1/requests/").status_code == 200


def test_staff_policy_leaves_non_staff_alone(requester):
    SecurityPolicy.objects.create(organization=requester.organization, require_2fa="staff")
    answer = login(requester.email).json()
    assert "mfa_enrolment_required" not in answer
    assert bearer(answer["access"]).get("/api/v1/requests/").status_code == 200


def test_admin_asks_for_the_code(admin_user):
    secret, _ = enrol(admin_user)
    previous_step(TOTPDevice.objects.get(user=admin_user))
    browser = Client()
    form = {"username": admin_user.email, "password": PASSWORD, "next": "/admin/"}
    page = browser.get("/admin/login/")
    assert 'name="otp_code"' in page.content.decode()
    without = browser.post("/admin/login/?next=/admin/", form)
    assert without.status_code == 200 and "code is wrong" in without.content.decode()
    assert browser.get("/admin/").status_code == 302  # still not in
    done = browser.post("/admin/login/?next=/admin/", {**form, "otp_code": code_at(secret)})
    assert done.status_code == 302
    assert browser.get("/admin/").status_code == 200


def test_admin_refuses_staff_without_2fa_where_required(admin_user):
    SecurityPolicy.objects.create(organization=admin_user.organization, require_2fa="staff")
    browser = Client()
    response = browser.post("/admin/login/", {"username": admin_user.email, "password": PASSWORD})
    assert response.status_code == 200 and "requires two-factor" in response.content.decode()
    assert browser.get("/admin/").status_code == 302


def test_an_admin_turns_off_a_lost_authenticator_but_not_of_someone_above_them(requester, admin_user):
    from core.testing import make_role, make_user

    enrol(requester)
    enrol(admin_user)
    make_role(requester.organization, "people", ["users.manage"])
    people = make_user(requester.organization, "people@acme-test.test", roles=["people"], is_staff=True)
    lesser = Client()
    lesser.force_login(people)
    refused = lesser.post(
        "/admin/accounts/user/", {"action": "reset_2fa_selected", "_selected_action": [str(admin_user.pk)]}
    )
    assert refused.status_code == 403
    assert TOTPDevice.objects.filter(user=admin_user).exists()

    staff = Client()
    staff.force_login(admin_user)
    done = staff.post(
        "/admin/accounts/user/", {"action": "reset_2fa_selected", "_selected_action": [str(requester.pk)]}
    )
    assert done.status_code == 302
    assert not TOTPDevice.objects.filter(user=requester).exists() and not RecoveryCode.objects.filter(user=requester)
    assert AuditLog.objects.get(action="auth.2fa_reset").actor_id == admin_user.pk
    assert "access" in login(requester.email).json()

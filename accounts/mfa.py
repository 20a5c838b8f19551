"""Two-factor authentication with TOTP (docs/security.md, "Two-factor authentication").

Enrolment (``totp_begin`` -> ``totp_confirm``) turns it on and hands out 10 recovery codes (stored
as SHA-256: they are random, 50 bits each, so a fast hash is enough). A password login of a user
with 2FA on gets a short-lived ``mfa_token`` instead of tokens (``mfa_token_for``), which
``login_second_factor`` exchanges with a code for the token pair. Codes are checked under the
device's row lock: a code is accepted once (its time step must be newer than the last accepted
one), with one step of clock drift either way.
"""

import hashlib
import secrets

import pyotp
import segno
from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from accounts.models import RecoveryCode, Require2FA, TOTPDevice, User
from accounts.password_policy import policy_for
from accounts.privileges import check_codes_grantable
from auditlogs.services import audit_record
from core.exceptions import Conflict, NotAuthenticated, ValidationFailed

ISSUER = "Approvals"
DRIFT_STEPS = 1  # one 30-second step either way
RECOVERY_CODES = 10
MFA_SALT = "accounts.mfa-login"  # the signature of an mfa_token is good for nothing else
WRONG_CODE = "The code is wrong, expired or already used."


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().replace("-", "").lower().encode()).hexdigest()


def has_2fa(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


def must_have_2fa(user: User) -> bool:
    """The organization's policy requires a second factor of this user."""
    required = policy_for(user.organization_id).require_2fa
    return required == Require2FA.EVERYONE or (required == Require2FA.STAFF and user.is_staff)


def totp_begin(*, user: User) -> dict:
    """A new secret (replacing an unfinished enrolment); 2FA turns on at ``totp_confirm``."""
    if has_2fa(user):
        raise Conflict("Two-factor authentication is already on: turn it off first.", code="2fa_already_on")
    secret = pyotp.random_base32()
    with transaction.atomic():
        TOTPDevice.objects.update_or_create(
            user=user, defaults={"secret": secret, "confirmed_at": None, "last_counter": -1}
        )
        audit_record(action="auth.2fa_enrolment_started", actor=user, target=user)
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return {"secret": secret, "otpauth_uri": uri, "qr_svg": segno.make(uri, error="m").svg_inline(scale=4)}


def _accept_totp(device: TOTPDevice, code: str) -> bool:
    """``code`` is the device's code of a step within the drift window, newer than the last one
    accepted; the step is remembered (the caller holds the device's row lock and saves)."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return False
    totp = pyotp.TOTP(device.secret)
    now = totp.timecode(timezone.now())
    for counter in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if counter > device.last_counter and secrets.compare_digest(totp.generate_otp(counter), code):
            device.last_counter = counter
            return True
    return False


def _accept_recovery(user: User, code: str) -> bool:
    spent = RecoveryCode.objects.filter(user=user, code_hash=_hash(code), used_at__isnull=True).update(
        used_at=timezone.now()
    )
    return spent == 1


def check_code(*, user: User, code: str, allow_recovery: bool = True) -> str:
    """Accept a TOTP code (or a recovery code) of ``user`` once; inside the caller's transaction.

    Returns ``"totp"`` or ``"recovery"``; raises ``ValidationFailed`` for a wrong or replayed code.
    """
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed_at__isnull=False).first()
    if device is None:
        raise Conflict("Two-factor authentication is not on.", code="2fa_not_on")
    if _accept_totp(device, code):
        device.save(update_fields=["last_counter", "updated_at"])
        return "totp"
    if allow_recovery and _accept_recovery(user, code):
        return "recovery"
    raise ValidationFailed(WRONG_CODE, code="invalid_code", details={"code": [WRONG_CODE]})


def _new_recovery_codes(user: User) -> list[str]:
    RecoveryCode.objects.filter(user=user).delete()
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"  # base32: 10 characters = 50 random bits
    raw = ["".join(secrets.choice(alphabet) for _ in range(10)) for _ in range(RECOVERY_CODES)]
    codes = [f"{c[:5]}-{c[5:]}" for c in raw]
    RecoveryCode.objects.bulk_create([RecoveryCode(user=user, code_hash=_hash(c)) for c in codes])
    return codes


def totp_confirm(*, user: User, code: str) -> list[str]:
    """Turn 2FA on with a first code from the app; the 10 recovery codes, shown this once."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user).first()
        if device is None:
            raise Conflict("Start the enrolment first (POST auth/2fa/totp/).", code="2fa_not_started")
        if device.confirmed_at is not None:
            raise Conflict("Two-factor authentication is already on.", code="2fa_already_on")
        if not _accept_totp(device, code):
            raise ValidationFailed(WRONG_CODE, code="invalid_code", details={"code": [WRONG_CODE]})
        device.confirmed_at = timezone.now()
        device.save(update_fields=["confirmed_at", "last_counter", "updated_at"])
        codes = _new_recovery_codes(user)
        audit_record(action="auth.2fa_enabled", actor=user, target=user)
    return codes


def totp_disable(*, user: User, password: str, code: str) -> None:
    """Turn 2FA off: the password and a code (TOTP or recovery) are both needed."""
    if not user.check_password(password):
        raise ValidationFailed(details={"password": ["The password is wrong."]})
    if must_have_2fa(user):
        raise Conflict("Your organization requires two-factor authentication.", code="2fa_required")
    with transaction.atomic():
        check_code(user=user, code=code)
        TOTPDevice.objects.filter(user=user).delete()
        RecoveryCode.objects.filter(user=user).delete()
        audit_record(action="auth.2fa_disabled", actor=user, target=user)


# --- the login's second step ---------------------------------------------------------------


def mfa_token_for(user: User) -> str:
    """Short-lived, single purpose: names the user who gave the right password just now. It dies
    once the login completes (it signs ``last_login``) and after ``MFA_TOKEN_SECONDS``."""
    return signing.dumps(
        {"u": str(user.pk), "l": user.last_login.isoformat() if user.last_login else "", "n": secrets.token_hex(8)},
        salt=MFA_SALT,
        compress=True,
    )


def user_for_mfa_token(token: str) -> User:
    try:
        data = signing.loads(token, salt=MFA_SALT, max_age=settings.MFA_TOKEN_SECONDS)
    except signing.BadSignature:  # SignatureExpired is one
        raise NotAuthenticated("The mfa_token is invalid or expired: log in again.", code="mfa_token_invalid") from None
    user = User.objects.filter(pk=data.get("u"), is_active=True).first()
    last_login = user.last_login.isoformat() if user and user.last_login else ""
    if user is None or data.get("l") != last_login:
        raise NotAuthenticated("The mfa_token is invalid or expired: log in again.", code="mfa_token_invalid")
    return user


def login_second_factor(*, mfa_token: str, code: str) -> tuple[User, str]:
    """Check the code of the user the token names; the login method (for the session) or the refusal."""
    user = user_for_mfa_token(mfa_token)
    with transaction.atomic():
        try:
            kind = check_code(user=user, code=code)
        except ValidationFailed:
            failed = True
        else:
            failed = False
            if kind == "recovery":
                audit_record(action="auth.recovery_code_used", actor=user, target=user)
    if failed:
        with transaction.atomic():
            audit_record(action="auth.2fa_failed", actor=None, organization=user.organization_id, target=user)
        raise ValidationFailed(WRONG_CODE, code="invalid_code", details={"code": [WRONG_CODE]})
    return user, "password+totp" if kind == "totp" else "recovery_code"


def totp_reset(*, actor: User | None, user: User) -> bool:
    """An administrator turns someone's 2FA off (authenticator and recovery codes lost). The actor
    must hold every permission the user holds: a lesser admin cannot weaken a greater one's login."""
    check_codes_grantable(actor=actor, codes=user.permission_codes)
    with transaction.atomic():
        deleted, _ = TOTPDevice.objects.filter(user=user).delete()
        RecoveryCode.objects.filter(user=user).delete()
        if deleted:
            audit_record(action="auth.2fa_reset", actor=actor, organization=user.organization_id, target=user)
    return bool(deleted)

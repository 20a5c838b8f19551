"""Password reset by e-mail (docs/security.md, "Password reset"). One transaction each, audited.

The request never tells whether an account exists: the API answers 202 either way, after the same
minimum time (``PASSWORD_RESET_MIN_SECONDS``, the view pads to it), and the e-mail leaves through
a Celery task after commit. The link carries Django's token (valid ``PASSWORD_RESET_TIMEOUT``
seconds), which signs the password hash and last login: the reset itself spends it.
"""

from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from django_ratelimit.core import is_ratelimited

from accounts.models import User
from accounts.password_policy import store_password, validate_new_password
from accounts.services import login_attempt_count, rate_seconds, revoke_sessions
from auditlogs.services import audit_record
from core import events
from core.exceptions import RateLimited, ValidationFailed
from core.ids import parse_uuid

INVALID_LINK = "This reset link is invalid or has expired: ask for a new one."


def check_rate(*, request, group: str, ip_rate: str, account: str, account_rate: str) -> None:
    """Per client IP in the cache and per account in the database (as the login's limits)."""
    if is_ratelimited(request, group=f"{group}-ip", key="ip", rate=ip_rate, increment=True):
        raise RateLimited(retry_after=rate_seconds(ip_rate))
    attempts = login_attempt_count(email=f"{group}:{account}", period=rate_seconds(account_rate))
    if attempts > int(account_rate.split("/", 1)[0]):
        raise RateLimited(retry_after=rate_seconds(account_rate))


def password_reset_request(*, email: str) -> None:
    """Mail a reset link to the active account with this e-mail, if there is one; nothing otherwise."""
    user = User.objects.filter(email__iexact=email.strip(), is_active=True).first()
    if user is None:
        return
    with transaction.atomic():
        audit_record(action="auth.password_reset_requested", actor=None, organization=user.organization_id, target=user)
        events.enqueue("accounts.tasks.send_password_reset_email", str(user.pk))


def user_for_link(*, uid: str, token: str) -> User | None:
    """The active user the link was made for, while its token is still good."""
    try:
        user_id = parse_uuid(force_str(urlsafe_base64_decode(uid)))
    except (ValueError, TypeError, UnicodeDecodeError):
        return None
    if user_id is None:
        return None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not default_token_generator.check_token(user, token):
        return None
    return user


def password_reset_confirm(*, uid: str, token: str, new_password: str) -> User:
    """Set the new password (the policy applies), end every session, tell the user by e-mail."""
    user = user_for_link(uid=uid, token=token)
    if user is None:
        raise ValidationFailed(INVALID_LINK, code="invalid_token", details={"token": [INVALID_LINK]})
    validate_new_password(user=user, password=new_password)
    with transaction.atomic():
        # Lock, then check the token again: of two confirmations racing with one link, the second
        # sees the new password hash and is refused.
        user = User.objects.select_for_update().get(pk=user.pk)
        if not default_token_generator.check_token(user, token):
            raise ValidationFailed(INVALID_LINK, code="invalid_token", details={"token": [INVALID_LINK]})
        store_password(user, new_password)
        user.failed_logins, user.locked_until = 0, None
        user.save(update_fields=["failed_logins", "locked_until"])
        revoke_sessions(user=user)
        audit_record(action="auth.password_reset", actor=user, target=user)
        events.enqueue("accounts.tasks.send_password_changed_email", str(user.pk))
    return user

"""The password login, with its second step when two-factor authentication is on.

``login_start``: the password (lockout, per-account failure count), then either the token pair
or, for a user with 2FA on, ``{"mfa_required": true, "mfa_token"}``; ``login_finish`` exchanges
the mfa_token and a code for the pair. A user whose organization requires 2FA but who has none
gets tokens marked ``mfa_setup``: they open the ``auth/`` endpoints (enrolment) and nothing else.
"""

from accounts import mfa, services
from accounts.models import User
from core.permissions import MFA_SETUP_CLAIM


def login_start(*, email: str, password: str) -> tuple[User, dict]:
    user = services.check_password_login(email=email, password=password)
    if mfa.has_2fa(user):
        return user, {"mfa_required": True, "mfa_token": mfa.mfa_token_for(user)}
    if mfa.must_have_2fa(user):
        tokens = services.login_complete(user=user, claims={MFA_SETUP_CLAIM: True})
        return user, {**tokens, "mfa_enrolment_required": True}
    return user, services.login_complete(user=user)


def login_finish(*, mfa_token: str, code: str) -> tuple[User, dict]:
    user, method = mfa.login_second_factor(mfa_token=mfa_token, code=code)
    return user, services.login_complete(user=user, method=method)

"""One DRF permission class for the role catalog: views name the codes each action needs."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from core.exceptions import Forbidden

MFA_SETUP_CLAIM = "mfa_setup"  # set on tokens that may only be used to enrol a second factor


class IsOrgMember(BasePermission):
    """Authenticated, active, and belonging to an organization (tenant endpoints)."""

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if user.organization_id is None:
            raise Forbidden("This endpoint needs a user that belongs to an organization.", code="no_organization")
        token = getattr(request, "auth", None)
        if token is not None and hasattr(token, "get") and token.get(MFA_SETUP_CLAIM):
            # Logged in by password where the organization requires a second factor not yet set up:
            # the tokens serve auth/ endpoints only (enrolment), nothing else (accounts/login_flow.py).
            raise Forbidden(
                "Your organization requires two-factor authentication: set it up (auth/2fa/totp/), then log in again.",
                code="mfa_enrolment_required",
            )
        return True


class HasPermissionCode(IsOrgMember):
    """Checks ``view.required_permissions``: a dict of action (or ``"read"``/``"write"``) to a code.

    Lookup order: the view action, then ``read`` for safe methods or ``write`` otherwise.
    A missing entry means membership is enough.
    """

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        required = getattr(view, "required_permissions", {}) or {}
        action = getattr(view, "action", None)
        code = (
            required.get(action)
            if action in required
            else required.get("read" if request.method in SAFE_METHODS else "write")
        )
        if code is None:
            return True
        return request.user.has_code(code)

"""Privilege boundaries: nobody grants what they do not hold, nobody raises their own privileges.

Every path that can give someone a permission goes through these checks before it writes:
creating a user with roles, adding a role member, creating a role or adding codes to one,
setting ``is_staff``/``is_superuser`` (API and admin alike). ``actor=None`` is the system
(seed, commands, migrations) and platform superusers hold everything.

- Granting a role (to anyone, oneself included) needs ``roles.manage`` and every code of the
  role: ``users.manage`` alone is not a way to make an organization admin.
- Putting codes into a role needs each added code: editing a role one holds cannot widen one's
  own codes, and a role cannot become a carrier for codes its editor lacks.
- ``is_staff`` (admin-site access) is set only by an organization admin (every catalog code)
  and never on oneself; ``is_superuser`` only by a platform superuser.
"""

from collections.abc import Iterable

from accounts.catalog import ALL_CODES, ROLES_MANAGE
from core.exceptions import Forbidden


def _is_system(actor) -> bool:
    return actor is None or (actor.is_active and actor.is_superuser)


def is_org_admin(actor) -> bool:
    """Holds every catalog code (what the built-in ``org_admin`` role gives) or is the system."""
    return _is_system(actor) or actor.permission_codes >= ALL_CODES


def check_codes_grantable(*, actor, codes: Iterable[str]) -> None:
    """The actor holds every one of ``codes`` (the codes being handed to someone or to a role)."""
    if _is_system(actor):
        return
    missing = sorted(set(codes) - actor.permission_codes)
    if missing:
        raise Forbidden(
            f"You cannot grant permissions you do not hold: {', '.join(missing)}.",
            code="cannot_grant",
            details={"permissions": missing},
        )


def check_roles_grantable(*, actor, roles: Iterable) -> None:
    """Assigning roles needs ``roles.manage`` and every code the roles carry."""
    roles = list(roles)
    if not roles or _is_system(actor):
        return
    if not actor.has_code(ROLES_MANAGE):
        raise Forbidden("Assigning roles needs the roles.manage permission.", code="cannot_grant")
    check_codes_grantable(actor=actor, codes={code for role in roles for code in (role.permissions or [])})


def check_role_codes_change(*, actor, before: Iterable[str], after: Iterable[str]) -> None:
    """Codes added to a role must be held by the editor (removing codes is always allowed)."""
    check_codes_grantable(actor=actor, codes=set(after) - set(before))


def check_flags_change(*, actor, user=None, is_staff: bool | None = None, is_superuser: bool | None = None) -> None:
    """Setting ``is_staff``/``is_superuser`` on ``user`` (``None``: a user being created; a flag
    left ``None`` is not being set)."""
    if _is_system(actor):
        return
    if is_superuser is not None and is_superuser != bool(user and user.is_superuser):
        raise Forbidden("Only a platform superuser sets is_superuser.", code="cannot_grant")
    if is_staff is None or is_staff == bool(user and user.is_staff):
        return
    if is_staff and user is not None and user.pk == actor.pk:
        raise Forbidden("You cannot raise your own privileges.", code="cannot_grant")
    if not is_org_admin(actor):
        raise Forbidden("Only an organization admin sets is_staff.", code="cannot_grant")

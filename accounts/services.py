"""Every change to users, roles and sessions (tokens). One transaction each, audited."""

import hashlib
import time
from datetime import timedelta

from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, transaction
from django.utils import timezone
from django_ratelimit.core import is_ratelimited
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import auth_cache
from accounts.catalog import ALL_CODES
from accounts.models import LoginAccountCounter, LoginSession, Role, RoleMembership, SecurityPolicy, User
from accounts.password_policy import policy_for, store_password, validate_new_password
from accounts.privileges import (
    check_codes_grantable,
    check_flags_change,
    check_role_codes_change,
    check_roles_grantable,
)
from accounts.sessions import revoke_access_tokens, revoke_sessions, session_rotate, session_start
from accounts.tokens import SESSION_CLAIM
from auditlogs.services import audit_record, delete_audited, model_changes, save_audited
from core import events
from core.exceptions import ApplicationError, Conflict, NotAuthenticated, RateLimited, ValidationFailed
from core.permissions import MFA_SETUP_CLAIM

USER_FIELDS = ["email", "first_name", "last_name", "department_id", "manager_id", "title", "is_staff", "is_active"]
ROLE_FIELDS = ["slug", "name", "description", "permissions"]


# --- Sessions ---------------------------------------------------------------------


def rate_seconds(rate: str) -> int:
    """The period of a django-ratelimit rate (``5/m`` -> 60): the Retry-After of a refusal."""
    period = rate.split("/", 1)[1] if "/" in rate else "m"
    multiplier = int(period[:-1]) if period[:-1].isdigit() else 1
    return multiplier * {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(period[-1:], 60)


def check_login_rate(*, request, email: str) -> None:
    """Per client IP in the cache (Redis; per-process memory while it is down), per account in
    the database, so the account limit holds across processes and through a Redis outage."""
    from django.conf import settings

    ip_rate, account_rate = settings.LOGIN_RATE_PER_IP, settings.LOGIN_RATE_PER_ACCOUNT
    if is_ratelimited(request, group="login-ip", key="ip", rate=ip_rate, increment=True):
        raise RateLimited(retry_after=rate_seconds(ip_rate))
    attempts = login_attempt_count(email=email, period=rate_seconds(account_rate))
    if attempts > int(account_rate.split("/", 1)[0]):
        raise RateLimited(retry_after=rate_seconds(account_rate))


def login_attempt_count(*, email: str, period: int) -> int:
    """Count one login attempt for the account; the attempts of its current window, this one included.

    One statement (an upsert), so concurrent attempts from any process each count exactly once.
    """
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    now = int(time.time())
    window = now - now % period
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_LOGIN_ATTEMPT, [account, window])
        return cursor.fetchone()[0]


# PostgreSQL and SQLite (>= 3.35) alike; the table is LoginAccountCounter's (Meta.db_table).
_COUNT_LOGIN_ATTEMPT = """
INSERT INTO accounts_login_account_counter AS c (account, window_start, count) VALUES (%s, %s, 1)
ON CONFLICT (account) DO UPDATE SET
    count = CASE WHEN c.window_start = EXCLUDED.window_start THEN c.count + 1 ELSE 1 END,
    window_start = EXCLUDED.window_start
RETURNING count
"""


def login_counters_prune(*, older_than_seconds: int = 86400) -> int:
    """Forget the counters of windows that started more than ``older_than_seconds`` ago."""
    return LoginAccountCounter.objects.filter(window_start__lt=int(time.time()) - older_than_seconds).delete()[0]


class AccountLocked(ApplicationError):
    status_code = 423
    code = "account_locked"

    def __init__(self, until):
        super().__init__(
            f"Too many failed logins: this account is locked until {until:%Y-%m-%d %H:%M:%S} UTC.",
            details={"locked_until": until.isoformat()},
        )
        self.retry_after = max(int((until - timezone.now()).total_seconds()) + 1, 1)


def check_not_locked(user: User | None) -> None:
    """Refuse a login while the account's lockout lasts (whatever the password: a right guess
    during the lockout must not be told apart from a wrong one)."""
    if user is not None and user.locked_until is not None and user.locked_until > timezone.now():
        raise AccountLocked(user.locked_until)


def _count_failure(user: User) -> None:
    """One more failed login in a row; at the policy's threshold the account locks for a while."""
    policy = policy_for(user.organization_id)
    locked = User.objects.select_for_update().get(pk=user.pk)
    locked.failed_logins += 1
    if policy.lockout_threshold and locked.failed_logins >= policy.lockout_threshold:
        locked.locked_until = timezone.now() + timedelta(minutes=policy.lockout_minutes)
        locked.failed_logins = 0
        audit_record(
            action="auth.locked",
            actor=None,
            organization=user.organization_id,
            target=user,
            changes={"locked_until": [None, locked.locked_until.isoformat()]},
        )
    locked.save(update_fields=["failed_logins", "locked_until"])
    auth_cache.user_changed(user.pk)


def login_failed(*, email: str, known: User | None, reason: str = "password") -> None:
    with transaction.atomic():
        if known is not None and known.is_active and reason == "password":
            _count_failure(known)
        audit_record(
            action="user.login_failed",
            actor=None,
            organization=known.organization_id if known else None,
            target=known,
            target_type="accounts.user",
            target_repr=email[:300],
            changes={"reason": [None, reason]} if reason != "password" else None,
        )


def check_password_login(*, email: str, password: str) -> User:
    """The user whose e-mail and password these are (active, not locked), or the refusal."""
    known = User.objects.filter(email__iexact=email.strip()).first()
    try:
        check_not_locked(known)
    except AccountLocked:
        login_failed(email=email, known=known, reason="locked")
        raise
    user = authenticate(username=email.strip().lower(), password=password)
    if user is None or not user.is_active:
        login_failed(email=email, known=known)
        raise NotAuthenticated("Invalid email or password.", code="invalid_credentials")
    return user


def login_complete(*, user: User, method: str = "password", claims: dict | None = None) -> dict:
    """Start a session for a user who proved who they are: the token pair, audited ``user.login``."""
    with transaction.atomic():
        tokens = session_start(user=user, method=method, claims=claims)
        User.objects.filter(pk=user.pk).update(last_login=timezone.now(), failed_logins=0, locked_until=None)
        auth_cache.user_changed(user.pk)
        audit_record(action="user.login", actor=user, target=user, changes={"method": [None, method]})
    return tokens


def login(*, email: str, password: str) -> tuple[User, dict]:
    user = check_password_login(email=email, password=password)
    return user, login_complete(user=user)


def user_unlock(*, actor: User | None, user: User) -> User:
    """An administrator lifts a lockout (the admin's "Unlock" action)."""
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        was = locked.locked_until
        locked.locked_until, locked.failed_logins = None, 0
        locked.save(update_fields=["locked_until", "failed_logins"])
        auth_cache.user_changed(user.pk)
        audit_record(
            action="auth.unlocked",
            actor=actor,
            organization=user.organization_id,
            target=user,
            changes={"locked_until": [was.isoformat() if was else None, None]},
        )
    return locked


def _blacklist_locked(jti: str) -> OutstandingToken:
    """Lock the outstanding token row so concurrent rotations of one token serialize."""
    outstanding = OutstandingToken.objects.select_for_update(of=("self",)).filter(jti=jti).first()
    if outstanding is None or BlacklistedToken.objects.filter(token=outstanding).exists():
        raise NotAuthenticated("Token is invalid or expired.", code="token_not_valid")
    BlacklistedToken.objects.create(token=outstanding)
    return outstanding


def refresh_tokens(*, refresh: str) -> dict:
    """Rotate: the presented refresh dies, a new pair is issued. Exactly one of N racing calls wins."""
    try:
        token = RefreshToken(refresh)
    except TokenError:
        raise NotAuthenticated("Token is invalid or expired.", code="token_not_valid") from None
    with transaction.atomic():
        outstanding = _blacklist_locked(token["jti"])
        user = User.objects.filter(pk=token.get("user_id"), is_active=True).first()
        if user is not None and outstanding.user_id == user.pk:
            kept = {MFA_SETUP_CLAIM: True} if token.get(MFA_SETUP_CLAIM) else None
            return session_rotate(user=user, session_id=token.get(SESSION_CLAIM), claims=kept)
    # Refused, and the presented token stays blacklisted (committed above): a later
    # reactivation does not bring an old session back.
    raise NotAuthenticated("User not found or inactive.", code="user_inactive")


def logout(*, user: User, refresh: str) -> None:
    try:
        token = RefreshToken(refresh)
    except TokenError:
        raise NotAuthenticated("Token is invalid or expired.", code="token_not_valid") from None
    if str(token.get("user_id")) != str(user.pk):
        raise ValidationFailed(details={"refresh": ["This token belongs to another user."]})
    with transaction.atomic():
        _blacklist_locked(token["jti"])
        if token.get(SESSION_CLAIM):
            LoginSession.objects.filter(pk=token[SESSION_CLAIM], user=user).update(ended_at=timezone.now())
        revoke_access_tokens(user=user)
        audit_record(action="user.logout", actor=user, target=user)


def password_change(*, user: User, old_password: str, new_password: str) -> None:
    if not user.check_password(old_password):
        raise ValidationFailed(details={"old_password": ["The current password is wrong."]})
    validate_new_password(user=user, password=new_password)
    with transaction.atomic():
        store_password(user, new_password)
        revoke_sessions(user=user)
        audit_record(action="password.changed", actor=user, target=user)
        events.enqueue("accounts.tasks.send_password_changed_email", str(user.pk))


def password_set(*, actor: User | None, user: User, new_password: str) -> User:
    """An administrator sets someone's password (the admin's password page): the policy applies,
    every session of the user ends, the user is told by e-mail."""
    validate_new_password(user=user, password=new_password, field="password1")
    with transaction.atomic():
        store_password(user, new_password)
        user.failed_logins, user.locked_until = 0, None
        user.save(update_fields=["failed_logins", "locked_until"])
        revoke_sessions(user=user)
        audit_record(action="auth.password_set", actor=actor, organization=user.organization_id, target=user)
        events.enqueue("accounts.tasks.send_password_changed_email", str(user.pk))
    return user


# --- Users ------------------------------------------------------------------------


def _check_same_org(organization, **related) -> None:
    for name, obj in related.items():
        if obj is not None and getattr(obj, "organization_id", None) != organization.pk:
            raise ValidationFailed(details={name: ["Must belong to your organization."]})


def user_create(
    *,
    actor: User | None,
    organization,
    email: str,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
    department=None,
    manager: User | None = None,
    title: str = "",
    is_staff: bool = False,
    roles: list[str] | None = None,
) -> User:
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationFailed(details={"email": ["A user with this email already exists."]})
    _check_same_org(organization, department=department, manager=manager)
    granted = _roles_by_slug(organization, roles or [])
    check_roles_grantable(actor=actor, roles=granted)
    check_flags_change(actor=actor, user=None, is_staff=is_staff)
    if password:
        validate_new_password(
            user=User(email=email, first_name=first_name, last_name=last_name, organization=organization),
            password=password,
            field="password",
        )
    with transaction.atomic():
        user = User.objects.create_user(
            email=email,
            password=password,
            organization=organization,
            first_name=first_name,
            last_name=last_name,
            department=department,
            manager=manager,
            title=title,
            is_staff=is_staff,
        )
        if not password:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        audit_record(
            action="user.created",
            actor=actor,
            organization=organization,
            target=user,
            changes=model_changes(user, None, USER_FIELDS),
        )
        for role in granted:
            role_member_add(actor=actor, role=role, user=user)
    return user


def _roles_by_slug(organization, slugs: list[str]) -> list[Role]:
    found = {r.slug: r for r in Role.objects.for_organization(organization).filter(slug__in=slugs)}
    unknown = [slug for slug in slugs if slug not in found]
    if unknown:
        raise ValidationFailed(details={"roles": [f"Unknown role {slug!r}." for slug in unknown]})
    return [found[slug] for slug in dict.fromkeys(slugs)]


def user_update(*, actor: User | None, user: User, **fields) -> User:
    allowed = {"first_name", "last_name", "department", "manager", "title", "is_staff"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationFailed(details={name: ["This field cannot be changed here."] for name in unknown})
    _check_same_org(user.organization, department=fields.get("department"), manager=fields.get("manager"))
    if fields.get("manager") is not None and fields["manager"].pk == user.pk:
        raise ValidationFailed(details={"manager": ["A user cannot be their own manager."]})
    if "is_staff" in fields:
        check_flags_change(actor=actor, user=user, is_staff=fields["is_staff"])
    with transaction.atomic():
        if fields.get("manager") is not None:
            _lock_reporting_lines(user.organization_id)
            _check_no_manager_cycle(user=user, manager=fields["manager"])
        save_audited(actor=actor, instance=user, fields=fields, tracked=USER_FIELDS, action="user.updated")
        auth_cache.user_changed(user.pk)
    return user


def _lock_reporting_lines(organization_id) -> None:
    """A manager change decides on the whole reporting chain: one lock per organization, so two
    concurrent changes (mark under alice, alice under mark) cannot both pass the cycle check."""
    organizations = User._meta.get_field("organization").related_model  # no import of the organizations app
    organizations.objects.select_for_update().filter(pk=organization_id).values_list("pk", flat=True).get()


def _check_no_manager_cycle(*, user: User, manager: User) -> None:
    """Walk up from ``manager`` (one query); bounded by the people seen, so a loop stored before
    this check existed is refused too instead of walked forever."""
    managers = dict(User.objects.for_organization(user.organization_id).values_list("pk", "manager_id"))
    seen: set = set()
    node = manager.pk
    while node is not None:
        if node == user.pk:
            raise ValidationFailed(
                details={"manager": [f"{manager.email} reports to {user.email}: managers cannot form a cycle."]}
            )
        if node in seen:
            raise ValidationFailed(details={"manager": ["The managers above this person form a loop; fix them first."]})
        seen.add(node)
        node = managers.get(node)


def user_deactivate(*, actor: User | None, user: User) -> User:
    """The soft delete of a user: no login, every token dead, history kept."""
    if actor is not None and actor.pk == user.pk:
        raise Conflict("You cannot deactivate yourself.", code="cannot_deactivate_self")
    if not user.is_active:
        return user
    with transaction.atomic():
        user.is_active = False
        user.deactivated_at = timezone.now()
        user.save(update_fields=["is_active", "deactivated_at"])
        revoke_sessions(user=user)  # and so the user's cached copies (accounts/auth_cache.py)
        audit_record(
            action="user.deactivated",
            actor=actor,
            organization=user.organization_id,
            target=user,
            changes={"is_active": [True, False]},
        )
    return user


def user_reactivate(*, actor: User | None, user: User) -> User:
    if user.is_active:
        return user
    with transaction.atomic():
        user.is_active = True
        user.deactivated_at = None
        user.save(update_fields=["is_active", "deactivated_at"])
        auth_cache.user_changed(user.pk)
        audit_record(
            action="user.updated",
            actor=actor,
            organization=user.organization_id,
            target=user,
            changes={"is_active": [False, True]},
        )
    return user


# --- Roles ------------------------------------------------------------------------


def _clean_codes(permissions) -> list[str]:
    if not isinstance(permissions, list) or any(not isinstance(c, str) for c in permissions):
        raise ValidationFailed(details={"permissions": ["A list of permission codes."]})
    unknown = sorted(set(permissions) - ALL_CODES)
    if unknown:
        raise ValidationFailed(details={"permissions": [f"Unknown permission code(s): {', '.join(unknown)}."]})
    return sorted(set(permissions))


def role_create(
    *,
    actor: User | None,
    organization,
    slug: str,
    name: str,
    description: str = "",
    permissions: list[str] | None = None,
    is_builtin: bool = False,
) -> Role:
    if Role.objects.for_organization(organization).filter(slug=slug).exists():
        raise ValidationFailed(details={"slug": ["A role with this slug already exists."]})
    permissions = _clean_codes(permissions or [])
    check_codes_grantable(actor=actor, codes=permissions)
    with transaction.atomic():
        role = Role.objects.create(
            organization=organization,
            slug=slug,
            name=name,
            description=description,
            permissions=permissions,
            is_builtin=is_builtin,
        )
        audit_record(
            action="role.created",
            actor=actor,
            organization=organization,
            target=role,
            changes=model_changes(role, None, ROLE_FIELDS),
        )
    return role


def role_update(*, actor: User | None, role: Role, **fields) -> Role:
    if "permissions" in fields:
        fields["permissions"] = _clean_codes(fields["permissions"])
        check_role_codes_change(actor=actor, before=role.permissions or [], after=fields["permissions"])
    if role.is_builtin and "slug" in fields and fields["slug"] != role.slug:
        raise ValidationFailed(details={"slug": ["Built-in roles keep their slug."]})
    if (
        "slug" in fields
        and Role.objects.for_organization(role.organization_id).filter(slug=fields["slug"]).exclude(pk=role.pk).exists()
    ):
        raise ValidationFailed(details={"slug": ["A role with this slug already exists."]})
    with transaction.atomic():
        save_audited(actor=actor, instance=role, fields=fields, tracked=ROLE_FIELDS, action="role.updated")
        auth_cache.everyone_changed()  # the role's members: not worth a query to list them
    return role


def role_delete(*, actor: User | None, role: Role) -> None:
    if role.is_builtin:
        raise Conflict("Built-in roles cannot be deleted.", code="builtin_role")
    with transaction.atomic():
        delete_audited(actor=actor, instance=role, tracked=ROLE_FIELDS, action="role.deleted")
        auth_cache.everyone_changed()


def role_member_add(*, actor: User | None, role: Role, user: User) -> RoleMembership:
    if user.organization_id != role.organization_id:
        raise ValidationFailed(details={"user": ["Must belong to your organization."]})
    check_roles_grantable(actor=actor, roles=[role])
    with transaction.atomic():
        membership, created = RoleMembership.objects.get_or_create(
            role=role, user=user, defaults={"organization_id": role.organization_id}
        )
        user.forget_roles()
        if created:
            auth_cache.user_changed(user.pk)
            audit_record(
                action="role.member_added",
                actor=actor,
                organization=role.organization_id,
                target=role,
                changes={"user": [None, user.email]},
            )
    return membership


def role_member_remove(*, actor: User | None, role: Role, user: User) -> None:
    with transaction.atomic():
        deleted, _ = RoleMembership.objects.filter(role=role, user=user).delete()
        user.forget_roles()
        if deleted:
            auth_cache.user_changed(user.pk)
            audit_record(
                action="role.member_removed",
                actor=actor,
                organization=role.organization_id,
                target=role,
                changes={"user": [user.email, None]},
            )


# --- Security policy ----------------------------------------------------------------

POLICY_FIELDS = [
    "password_min_length",
    "password_check_common",
    "password_history",
    "lockout_threshold",
    "lockout_minutes",
    "require_2fa",
]


def security_policy_update(*, actor: User | None, organization, **fields) -> SecurityPolicy:
    """Create or change the organization's security policy (audited ``auth.policy_updated``)."""
    unknown = set(fields) - set(POLICY_FIELDS)
    if unknown:
        raise ValidationFailed(details={name: ["This field cannot be changed here."] for name in unknown})
    org_id = getattr(organization, "pk", organization)
    with transaction.atomic():
        policy, _created = SecurityPolicy.objects.select_for_update().get_or_create(organization_id=org_id)
        candidate = SecurityPolicy(**{**{name: getattr(policy, name) for name in POLICY_FIELDS}, **fields})
        try:
            candidate.clean_fields(exclude=["organization"])
        except DjangoValidationError as exc:
            raise ValidationFailed(details=exc.message_dict) from None
        save_audited(actor=actor, instance=policy, fields=fields, tracked=POLICY_FIELDS, action="auth.policy_updated")
    return policy

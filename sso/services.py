"""Single sign-on: the provider configuration (admin) and the sign-in itself. One transaction each.

A sign-in is two requests: ``login_start`` records the attempt (state, nonce, PKCE verifier) and
answers the provider's address; ``login_finish`` consumes the attempt once, exchanges the code,
verifies the ID token and starts a session exactly as a password login does
(``accounts.services.login_complete``). Every refusal is audited ``auth.oidc_refused`` and
starts no session.
"""

import hmac
import re
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Role, User
from accounts.privileges import check_roles_grantable
from auditlogs.services import audit_record, save_audited
from core.exceptions import Forbidden, NotAuthenticated, ValidationFailed
from organizations.models import Department
from sso import protocol
from sso.models import OIDCLoginAttempt, OIDCProvider

CONFIG_FIELDS = ["enabled", "issuer", "client_id", "allowed_domains", "jit_create", "jit_department", "jit_roles"]
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


# --- configuration ---------------------------------------------------------------------------


def _clean_config(*, actor: User | None, organization, fields: dict) -> dict:
    """Validated values; the roles a newcomer gets must be grantable by whoever sets them."""
    errors: dict[str, list[str]] = {}
    if "allowed_domains" in fields:
        domains = [str(d).strip().lower() for d in fields["allowed_domains"] or [] if str(d).strip()]
        bad = [d for d in domains if not DOMAIN.match(d)]
        if bad or len(domains) > 50:
            errors["allowed_domains"] = [f"Not a domain: {', '.join(bad[:5])}." if bad else "At most 50 domains."]
        fields["allowed_domains"] = sorted(set(domains))
    if "issuer" in fields and not re.match(r"^https?://[^\s?#]+$", fields["issuer"] or ""):
        errors["issuer"] = ["An http(s) URL without query or fragment."]
    department = fields.get("jit_department")
    if department is not None and department.organization_id != getattr(organization, "pk", organization):
        errors["jit_department"] = ["Not a department of this organization."]
    if "jit_roles" in fields:
        slugs = sorted({str(s).strip() for s in fields["jit_roles"] or [] if str(s).strip()})
        roles = list(Role.objects.for_organization(organization).filter(slug__in=slugs))
        unknown = sorted(set(slugs) - {r.slug for r in roles})
        if unknown:
            errors["jit_roles"] = [f"No such role: {', '.join(unknown[:5])}."]
        else:
            # Whoever configures single sign-on hands these roles to every newcomer: only roles
            # the editor could grant directly (accounts/privileges.py).
            check_roles_grantable(actor=actor, roles=roles)
        fields["jit_roles"] = slugs
    if errors:
        raise ValidationFailed(details=errors)
    return fields


def oidc_provider_save(*, actor: User | None, organization, client_secret: str | None = None, **fields) -> OIDCProvider:
    """Create or change the organization's OIDC provider (audited ``auth.oidc_configured``).

    ``client_secret=None`` keeps the stored secret; it is never written to the audit log.
    """
    unknown = set(fields) - set(CONFIG_FIELDS)
    if unknown:
        raise ValidationFailed(details={name: ["This field cannot be changed here."] for name in unknown})
    fields = _clean_config(actor=actor, organization=organization, fields=dict(fields))
    org_id = getattr(organization, "pk", organization)
    with transaction.atomic():
        provider = OIDCProvider.objects.select_for_update().filter(organization_id=org_id).first()
        if provider is None:
            missing = [name for name in ("issuer", "client_id") if not fields.get(name)]
            if missing:
                raise ValidationFailed(details={name: ["This field is required."] for name in missing})
            provider = OIDCProvider(organization_id=org_id)
        if client_secret is not None:
            provider.client_secret = client_secret
        changes = save_audited(
            actor=actor, instance=provider, fields=fields, tracked=CONFIG_FIELDS, action="auth.oidc_configured"
        )
        if client_secret is not None and not changes:
            audit_record(
                action="auth.oidc_configured",
                actor=actor,
                organization=org_id,
                target=provider,
                changes={"client_secret": ["(hidden)", "(changed)"]},
            )
    return provider


# --- sign-in ---------------------------------------------------------------------------------


def _refused(*, provider: OIDCProvider | None, reason: str, email: str = "", user: User | None = None) -> None:
    with transaction.atomic():
        audit_record(
            action="auth.oidc_refused",
            actor=None,
            organization=provider.organization_id if provider else None,
            target=user,
            target_type="accounts.user",
            target_repr=email[:300],
            changes={"reason": [None, reason]},
        )


def login_start(*, provider: OIDCProvider, redirect_uri: str, purpose: str = "api") -> tuple[str, str]:
    """Record a new attempt; the provider's authorization URL for it and its state (which the
    view also gives the browser, so the callback completes only in the browser that started)."""
    state, nonce, verifier = protocol.random_token(), protocol.random_token(), protocol.random_token()
    url = protocol.authorization_url(
        issuer=provider.issuer,
        client_id=provider.client_id,
        redirect_uri=redirect_uri,
        state=state,
        nonce=nonce,
        code_verifier=verifier,
    )
    stale = timezone.now() - timedelta(seconds=settings.OIDC_ATTEMPT_SECONDS)
    with transaction.atomic():
        # Sign-ins nobody finished are forgotten here, so the table holds only live ones.
        OIDCLoginAttempt.objects.for_organization(provider.organization_id).filter(created_at__lt=stale).delete()
        OIDCLoginAttempt.objects.create(
            organization_id=provider.organization_id,
            provider=provider,
            state=state,
            nonce=nonce,
            code_verifier=verifier,
            redirect_uri=redirect_uri,
            purpose=purpose,
        )
    return url, state


def _consume_attempt(state: str) -> OIDCLoginAttempt | None:
    """The live attempt of ``state``, deleted so the same state never completes twice."""
    with transaction.atomic():
        attempt = (
            OIDCLoginAttempt.objects.select_for_update(of=("self",))
            .select_related("provider")
            .filter(state=state)
            .first()
        )
        if attempt is None:
            return None
        attempt.delete()
    fresh = attempt.created_at > timezone.now() - timedelta(seconds=settings.OIDC_ATTEMPT_SECONDS)
    return attempt if fresh and attempt.provider.enabled else None


def _email_of(claims: dict, provider: OIDCProvider) -> str:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or len(email) > 254:
        raise NotAuthenticated("The identity provider gave no e-mail address.", code="oidc_no_email")
    if claims.get("email_verified") is False:
        raise NotAuthenticated("The identity provider has not verified this e-mail.", code="oidc_email_unverified")
    email = email.strip().lower()
    if email.rsplit("@", 1)[1] not in provider.allowed_domains:
        raise Forbidden("This e-mail domain may not sign in here.", code="oidc_domain_not_allowed")
    return email


def _user_for(*, email: str, claims: dict, provider: OIDCProvider) -> User:
    user = User.objects.filter(email__iexact=email).first()
    if user is not None:
        if user.organization_id != provider.organization_id:
            raise Forbidden("This account belongs to another organization.", code="oidc_wrong_organization")
        if not user.is_active:
            raise Forbidden("This account is deactivated.", code="account_inactive")
        return user
    if not provider.jit_create:
        raise Forbidden("There is no account for this e-mail.", code="oidc_no_account")
    department = (
        Department.objects.for_organization(provider.organization_id).filter(pk=provider.jit_department_id).first()
    )
    # The system creates it (actor None); the roles passed the privilege check when configured.
    return account_services.user_create(
        actor=None,
        organization=provider.organization,
        email=email,
        first_name=str(claims.get("given_name") or "")[:150],
        last_name=str(claims.get("family_name") or "")[:150],
        department=department,
        roles=list(provider.jit_roles),
    )


def login_finish(*, state: str, code: str, browser_state: str | None) -> tuple[User, dict | None]:
    """Complete a sign-in: the same token pair as a password login (audited ``auth.oidc_login``);
    for a sign-in into the admin (``purpose`` admin) no tokens (None): the caller opens the admin
    session, for staff only.

    ``browser_state`` is the state the starting browser kept (a cookie): a callback address
    opened in another browser (login CSRF: someone else's code and state) is refused and the
    attempt left alone.
    """
    if not browser_state or not hmac.compare_digest(browser_state, state):
        _refused(provider=None, reason="browser")
        raise NotAuthenticated("This sign-in was started in another browser; start again.", code="oidc_state_invalid")
    attempt = _consume_attempt(state)
    if attempt is None:
        _refused(provider=None, reason="state")
        raise NotAuthenticated("This sign-in is unknown, used or expired; start again.", code="oidc_state_invalid")
    provider, email, user = attempt.provider, "", None
    try:
        id_token = protocol.exchange_code(
            issuer=provider.issuer,
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            code=code,
            redirect_uri=attempt.redirect_uri,
            code_verifier=attempt.code_verifier,
        )
        claims = protocol.verify_id_token(
            id_token=id_token, issuer=provider.issuer, client_id=provider.client_id, nonce=attempt.nonce
        )
        email = _email_of(claims, provider)
        with transaction.atomic():
            user = _user_for(email=email, claims=claims, provider=provider)
            if attempt.purpose == "admin":
                if not user.is_staff:
                    raise Forbidden("This account cannot use the admin.", code="not_staff")
                tokens = None
            else:
                tokens = account_services.login_complete(user=user, method="oidc")
            audit_record(
                action="auth.oidc_login",
                actor=user,
                target=user,
                changes={
                    "issuer": [None, provider.issuer],
                    "subject": [None, str(claims["sub"])[:200]],
                    "purpose": [None, attempt.purpose],
                },
            )
    except protocol.TokenRejected as exc:
        _refused(provider=provider, reason=exc.reason, email=email)
        raise
    except (NotAuthenticated, Forbidden) as exc:
        known = User.objects.filter(email__iexact=email, organization_id=provider.organization_id).first()
        _refused(provider=provider, reason=exc.code, email=email, user=known if email else None)
        raise
    return user, tokens


def oidc_provider_delete(*, actor: User | None, provider: OIDCProvider) -> None:
    """Turn single sign-on off for good (audited ``auth.oidc_removed``); accounts stay."""
    with transaction.atomic():
        locked = OIDCProvider.objects.select_for_update().get(pk=provider.pk)
        pk, org_id, issuer = locked.pk, locked.organization_id, locked.issuer
        locked.delete()
        audit_record(
            action="auth.oidc_removed",
            actor=actor,
            organization=org_id,
            target_type="sso.oidcprovider",
            target_id=str(pk),
            target_repr=f"OIDC {issuer}"[:300],
            changes={"issuer": [issuer, None]},
        )

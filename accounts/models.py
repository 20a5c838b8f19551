from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone

from accounts.catalog import ALL_CODES
from core.models import TenantQuerySet, TimeStampedModel, UUIDModel

MAX_PASSWORD_HISTORY = 12  # each remembered password costs one hash check per change


class UserQuerySet(TenantQuerySet):
    def active(self):
        return self.filter(is_active=True)


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):
    use_in_migrations = True

    def _create(self, email, password, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create(email, password, **extra)

    def get_by_natural_key(self, username):
        return self.get(**{f"{self.model.USERNAME_FIELD}__iexact": username})


class User(AbstractBaseUser, PermissionsMixin, UUIDModel):
    """Logs in with e-mail. Belongs to one organization (platform superusers to none).

    Never hard-deleted: deactivation (``is_active=False``) is the soft delete and
    keeps every decision and audit row pointing at a real person.
    """

    email = models.EmailField(unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    organization = models.ForeignKey(
        "organizations.Organization", null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    department = models.ForeignKey(
        "organizations.Department", null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    manager = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports")
    title = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Can log into the admin (scoped to the organization).")
    date_joined = models.DateTimeField(default=timezone.now)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    token_version = models.PositiveIntegerField(
        default=0,
        help_text="Carried by every token issued; raised by logout, password change and deactivation, "
        "which kills the access tokens issued before (accounts/tokens.py).",
    )
    preferences_version = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Raised by every change of the user's notification preferences: the key of the copy "
        "each process keeps (notifications/selectors.py).",
    )
    failed_logins = models.PositiveIntegerField(default=0, help_text="Failed password logins in a row.")
    locked_until = models.DateTimeField(
        null=True, blank=True, help_text="Password logins are refused until then (the lockout of the security policy)."
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]
        indexes = [
            models.Index(fields=["organization", "is_active"]),
            # e-mail lookups are case-insensitive (``email__iexact``: UPPER(email) = UPPER(%s)): sign-in,
            # invitations, and routing to a step's named user on every stage activation, which scanned
            # the organization's users without it (issue 14)
            models.Index(Upper("email"), name="accounts_user_email_upper"),
        ]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email

    def get_short_name(self) -> str:
        return self.first_name or self.email

    def _roles(self) -> list[tuple[str, list]]:
        """(slug, permissions) of the user's roles: one query, cached on the instance (one request)."""
        cached = getattr(self, "_role_rows", None)
        if cached is None:
            cached = self._role_rows = list(
                Role.objects.filter(memberships__user=self).order_by("slug").values_list("slug", "permissions")
            )
        return cached

    def prime_roles(self, rows: list[tuple[str, list]]) -> None:
        """Set the roles loaded with the user (authentication reads them in the same query)."""
        self._role_rows = list(rows)

    def forget_roles(self) -> None:
        """Drop the cached roles and codes after a membership change on this instance."""
        self.__dict__.pop("_role_rows", None)
        self.__dict__.pop("_permission_codes", None)

    @property
    def permission_codes(self) -> frozenset[str]:
        """Catalog codes granted by the user's roles, cached on the instance."""
        cached = getattr(self, "_permission_codes", None)
        if cached is None:
            if not self.is_active:
                cached = frozenset()
            elif self.is_superuser:
                cached = ALL_CODES
            else:
                codes: set[str] = set()
                for _slug, perms in self._roles():
                    codes.update(perms or [])
                cached = frozenset(codes & ALL_CODES)
            self._permission_codes = cached
        return cached

    def has_code(self, code: str) -> bool:
        return code in self.permission_codes

    @property
    def role_slugs(self) -> list[str]:
        return [slug for slug, _perms in self._roles()]


class Role(TimeStampedModel):
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="roles")
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=150)
    description = models.TextField(blank=True)
    permissions = models.JSONField(default=list, blank=True, help_text="Permission codes from the catalog.")
    is_builtin = models.BooleanField(default=False)

    objects = models.Manager.from_queryset(TenantQuerySet)()

    class Meta:
        ordering = ["slug"]
        constraints = [models.UniqueConstraint(fields=["organization", "slug"], name="uniq_role_slug_per_org")]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"


class RoleMembership(TimeStampedModel):
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="+")
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="role_memberships")

    objects = models.Manager.from_queryset(TenantQuerySet)()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["role", "user"], name="uniq_role_member")]

    def __str__(self) -> str:
        return f"{self.user} in {self.role.slug}"


class LoginAccountCounter(models.Model):
    """Login attempts per account in the current window of ``LOGIN_RATE_PER_ACCOUNT``.

    Kept in the database, not the cache: the per-account limit must hold across every process
    and while Redis is down (issue 19.10). One row per account tried (the key is a hash of the
    lower-cased e-mail, so no address is stored); rows of past windows are pruned periodically.
    """

    account = models.CharField(max_length=64, primary_key=True)
    window_start = models.BigIntegerField(help_text="Epoch seconds the current window started.")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "accounts_login_account_counter"  # named in the upsert (accounts/services.py)
        indexes = [models.Index(fields=["window_start"])]

    def __str__(self) -> str:
        return f"{self.account[:12]}: {self.count}"


class Require2FA(models.TextChoices):
    NOBODY = "nobody", "Nobody"
    STAFF = "staff", "Staff (admin users)"
    EVERYONE = "everyone", "Everyone"


class SecurityPolicy(TimeStampedModel):
    """An organization's account rules (docs/security.md). An organization without a row has the defaults."""

    organization = models.OneToOneField(
        "organizations.Organization", on_delete=models.CASCADE, related_name="security_policy"
    )
    password_min_length = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(8), MaxValueValidator(128)]
    )
    password_check_common = models.BooleanField(
        default=True, help_text="Refuse the passwords of Django's list of 20,000 common (breached) passwords."
    )
    password_history = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_PASSWORD_HISTORY)],
        help_text=f"Refuse the last N passwords of the user (0: off, at most {MAX_PASSWORD_HISTORY}).",
    )
    lockout_threshold = models.PositiveSmallIntegerField(
        default=10, validators=[MaxValueValidator(1000)], help_text="Failed logins in a row that lock (0: never)."
    )
    lockout_minutes = models.PositiveSmallIntegerField(
        default=15, validators=[MinValueValidator(1), MaxValueValidator(24 * 60)]
    )
    require_2fa = models.CharField(max_length=16, choices=Require2FA.choices, default=Require2FA.NOBODY)

    objects = models.Manager.from_queryset(TenantQuerySet)()

    class Meta:
        verbose_name_plural = "security policies"

    def __str__(self) -> str:
        return f"Security policy of {self.organization_id}"


class PasswordHistory(models.Model):
    """The hashes of a user's earlier passwords: the policy's reuse check (the newest N are kept)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="password_history")
    password = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} at {self.created_at:%Y-%m-%d}"


class LoginSession(UUIDModel):
    """One login on one device: the chain of refresh tokens it rotates through (claim ``sid``).

    What ``GET auth/sessions/`` lists and ``DELETE auth/sessions/{id}/`` ends. ``refresh_jti`` is the
    session's live refresh token, blacklisted when the session ends.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="login_sessions")
    organization = models.ForeignKey(
        "organizations.Organization", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    method = models.CharField(max_length=16, default="password", help_text="password, password+totp, recovery_code")
    refresh_jti = models.CharField(max_length=255, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = models.Manager.from_queryset(TenantQuerySet)()

    class Meta:
        ordering = ["-last_used_at"]
        indexes = [models.Index(fields=["user", "ended_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} since {self.created_at:%Y-%m-%d %H:%M}"


class TOTPDevice(TimeStampedModel):
    """A user's authenticator app (RFC 6238, 30 s steps, 6 digits). On once ``confirmed_at`` is set.

    ``last_counter`` is the time step of the last code accepted: a code of that step or an earlier
    one is refused (no replay, also within the drift window).
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="totp_device")
    secret = models.CharField(max_length=64)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_counter = models.BigIntegerField(default=-1)

    def __str__(self) -> str:
        return f"TOTP of {self.user_id} ({'on' if self.confirmed_at else 'enrolling'})"


class RecoveryCode(models.Model):
    """A single-use code for when the authenticator is lost; only its SHA-256 is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["user", "code_hash"])]

    def __str__(self) -> str:
        return f"recovery code of {self.user_id}"

"""The password policy of an organization: length, the common-password list, no reuse of the last N.

Every path that sets a password (password change, reset, the admin's password page, user
creation) validates with ``validate_new_password`` and stores with ``store_password``, so the
rules and the reuse history hold whichever way a password arrives.
"""

from django.contrib.auth.hashers import check_password
from django.contrib.auth.password_validation import (
    CommonPasswordValidator,
    MinimumLengthValidator,
    NumericPasswordValidator,
    UserAttributeSimilarityValidator,
)
from django.core.exceptions import ValidationError as DjangoValidationError

from accounts.models import PasswordHistory, SecurityPolicy, User
from core.exceptions import ValidationFailed


def policy_for(organization_id) -> SecurityPolicy:
    """The organization's policy, or the defaults (unsaved) when it has none."""
    if organization_id is None:
        return SecurityPolicy()
    policy = SecurityPolicy.objects.filter(organization_id=organization_id).first()
    return policy or SecurityPolicy(organization_id=organization_id)


def _validators(policy: SecurityPolicy) -> list:
    validators = [
        UserAttributeSimilarityValidator(),
        MinimumLengthValidator(min_length=policy.password_min_length),
        NumericPasswordValidator(),
    ]
    if policy.password_check_common:
        validators.append(CommonPasswordValidator())
    return validators


def validate_new_password(*, user: User, password: str, field: str = "new_password") -> None:
    """Raise ``ValidationFailed`` (``details[field]``) when ``password`` breaks the user's organization's policy."""
    policy = policy_for(user.organization_id)
    errors: list[str] = []
    for validator in _validators(policy):
        try:
            validator.validate(password, user)
        except DjangoValidationError as exc:
            errors.extend(exc.messages)
    remembered = policy.password_history
    if not errors and not user._state.adding and remembered and _reused(user, password, remembered):
        errors.append(f"This password was used recently: choose one you have not used in your last {remembered}.")
    if errors:
        raise ValidationFailed(details={field: errors})


def _reused(user: User, password: str, remembered: int) -> bool:
    # The current password counts as the newest one (it is stored on the user, not in the history).
    if user.has_usable_password() and user.check_password(password):
        return True
    earlier = PasswordHistory.objects.filter(user=user).values_list("password", flat=True)[: max(remembered - 1, 0)]
    return any(check_password(password, encoded) for encoded in earlier)


def store_password(user: User, password: str) -> None:
    """Set ``password`` on ``user`` (saved), remembering the one it replaces; call inside the change's transaction."""
    policy = policy_for(user.organization_id)
    if user.has_usable_password() and user.password:
        PasswordHistory.objects.create(user=user, password=user.password)
    user.set_password(password)
    user.save(update_fields=["password"])
    keep = max(policy.password_history - 1, 0)
    stale = PasswordHistory.objects.filter(user=user).values_list("pk", flat=True)[keep:]
    PasswordHistory.objects.filter(pk__in=list(stale)).delete()

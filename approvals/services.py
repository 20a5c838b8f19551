"""Delegations: a user hands their approvals to someone else for a window (optionally one workflow).

The decisions themselves are lifecycle transitions: ``approvals.lifecycle.services``.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from approvals.lifecycle import events as ev
from approvals.lifecycle.checks import check_user_in_org
from approvals.models import Delegation
from core.exceptions import NotFound, ValidationFailed

# --- delegations ------------------------------------------------------------------------------


def _validate_delegation(*, from_user, to_user, starts_at, ends_at, exclude_id=None) -> None:
    errors: dict[str, list[str]] = {}
    if to_user.pk == from_user.pk:
        errors.setdefault("to_user", []).append("You cannot delegate to yourself.")
    if not to_user.is_active or to_user.organization_id != from_user.organization_id:
        errors.setdefault("to_user", []).append("Unknown user.")
    if starts_at is None or ends_at is None or ends_at <= starts_at:
        errors.setdefault("ends_at", []).append("The end must be after the start.")
    if errors:
        raise ValidationFailed(details=errors)
    reverse = Delegation.objects.filter(
        organization_id=from_user.organization_id,
        from_user=to_user,
        to_user=from_user,
        starts_at__lt=ends_at,
        ends_at__gt=starts_at,
    )
    if exclude_id:
        reverse = reverse.exclude(pk=exclude_id)
    if reverse.exists():
        raise ValidationFailed(
            details={"to_user": [f"{to_user.email} already delegates to you in an overlapping window."]}
        )


def _lock_pair(a, b) -> None:
    # Serialize concurrent A->B / B->A creations: lock both users' rows in a fixed order.
    list(User.objects.select_for_update().filter(pk__in=sorted({a.pk, b.pk}, key=str)).order_by("id"))


def _delegation_changes(d: Delegation) -> dict:
    return {
        "from_user": str(d.from_user_id),
        "to_user": str(d.to_user_id),
        "starts_at": d.starts_at,
        "ends_at": d.ends_at,
        "workflow": str(d.workflow_id) if d.workflow_id else None,
        "reason": d.reason,
    }


def delegation_create(*, actor, to_user, starts_at, ends_at, workflow=None, reason: str = "") -> Delegation:
    to_user = check_user_in_org(to_user, actor.organization_id, "to_user") if not isinstance(to_user, User) else to_user
    if workflow is not None and workflow.organization_id != actor.organization_id:
        raise ValidationFailed(details={"workflow": ["Unknown workflow."]})
    outbox = ev.Outbox(actor=actor)
    with transaction.atomic():
        _lock_pair(actor, to_user)
        _validate_delegation(from_user=actor, to_user=to_user, starts_at=starts_at, ends_at=ends_at)
        delegation = Delegation.objects.create(
            organization_id=actor.organization_id,
            from_user=actor,
            to_user=to_user,
            starts_at=starts_at,
            ends_at=ends_at,
            workflow=workflow,
            reason=reason or "",
        )
        window = f"From {starts_at:%Y-%m-%d %H:%M} to {ends_at:%Y-%m-%d %H:%M} UTC"
        outbox.emit(
            ev.DelegationCreated(delegation, _delegation_changes(delegation), data={"delegation": str(delegation.pk)}),
            ev.Notice(
                to_user,
                {
                    "author": actor.get_full_name(),
                    "message": window + (f" for {workflow.name}" if workflow else ""),
                },
            ),
        )
        outbox.flush()
    return delegation


def _own_delegation(actor, delegation_id) -> Delegation:
    try:
        delegation = (
            Delegation.objects.select_for_update()
            .filter(pk=delegation_id, organization_id=actor.organization_id)
            .first()
        )
    except (DjangoValidationError, ValueError, TypeError):  # a malformed id is not found
        delegation = None
    if delegation is None or delegation.from_user_id != actor.pk:
        raise NotFound("Delegation not found.")
    return delegation


_UNSET = object()


def delegation_update(
    *, actor, delegation_id, to_user=_UNSET, starts_at=_UNSET, ends_at=_UNSET, workflow=_UNSET, reason=_UNSET
) -> Delegation:
    outbox = ev.Outbox(actor=actor)
    with transaction.atomic():
        delegation = _own_delegation(actor, delegation_id)
        before = _delegation_changes(delegation)
        if to_user is not _UNSET:
            delegation.to_user = check_user_in_org(to_user, actor.organization_id, "to_user")
        if starts_at is not _UNSET:
            delegation.starts_at = starts_at
        if ends_at is not _UNSET:
            delegation.ends_at = ends_at
        if workflow is not _UNSET:
            if workflow is not None and workflow.organization_id != actor.organization_id:
                raise ValidationFailed(details={"workflow": ["Unknown workflow."]})
            delegation.workflow = workflow
        if reason is not _UNSET:
            delegation.reason = reason or ""
        _lock_pair(actor, delegation.to_user)
        _validate_delegation(
            from_user=actor,
            to_user=delegation.to_user,
            starts_at=delegation.starts_at,
            ends_at=delegation.ends_at,
            exclude_id=delegation.pk,
        )
        delegation.save()
        after = _delegation_changes(delegation)
        changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
        if changes:
            outbox.emit(ev.DelegationUpdated(delegation, changes))
        outbox.flush()
    return delegation


def delegation_delete(*, actor, delegation_id) -> None:
    outbox = ev.Outbox(actor=actor)
    with transaction.atomic():
        delegation = _own_delegation(actor, delegation_id)
        delegation.deleted_at = timezone.now()
        delegation.save(update_fields=["deleted_at", "updated_at"])
        outbox.emit(ev.DelegationDeleted(delegation, {"deleted_at": [None, delegation.deleted_at]}))
        outbox.flush()

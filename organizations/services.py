"""Organizations, departments and holidays. One transaction each, audited."""

from django.db import transaction
from django.utils import timezone

from accounts import auth_cache
from accounts.catalog import BUILTIN_ROLES
from auditlogs.services import audit_record, delete_audited, model_changes, save_audited, snapshot
from core.exceptions import Conflict, ValidationFailed
from organizations.models import Department, Holiday, Organization

ORG_FIELDS = ["name", "slug", "timezone", "work_days", "work_start", "work_end", "is_active"]
DEPARTMENT_FIELDS = ["name", "parent_id", "head_id"]
HOLIDAY_FIELDS = ["date", "name"]


def _full_clean(instance, exclude=None) -> None:
    from django.core.exceptions import ValidationError

    try:
        instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise ValidationFailed(details={k: [str(m) for m in v] for k, v in exc.message_dict.items()}) from None


def organization_create(*, actor=None, name: str, slug: str, timezone: str = "UTC", **calendar) -> Organization:
    from accounts.services import role_create

    if Organization.objects.filter(slug=slug).exists():
        raise ValidationFailed(details={"slug": ["An organization with this slug already exists."]})
    org = Organization(name=name, slug=slug, timezone=timezone, **calendar)
    _full_clean(org)
    with transaction.atomic():
        org.save()
        audit_record(
            action="organization.created",
            actor=actor,
            organization=org,
            target=org,
            changes=model_changes(org, None, ORG_FIELDS),
        )
        for role_slug, (role_name, codes) in BUILTIN_ROLES.items():
            role_create(
                actor=actor,
                organization=org,
                slug=role_slug,
                name=role_name,
                permissions=sorted(codes),
                is_builtin=True,
            )
    return org


def organization_update(*, actor, organization: Organization, **fields) -> Organization:
    before = snapshot(organization, ORG_FIELDS)
    for name, value in fields.items():
        setattr(organization, name, value)
    _full_clean(organization)
    if organization.work_end <= organization.work_start:
        raise ValidationFailed(details={"work_end": ["Work hours must end after they start."]})
    with transaction.atomic():
        organization.save()
        auth_cache.everyone_changed()  # every user carries their organization (accounts/auth_cache.py)
        changes = model_changes(organization, before, ORG_FIELDS)
        if changes:
            audit_record(
                action="organization.updated",
                actor=actor,
                organization=organization,
                target=organization,
                changes=changes,
            )
    return organization


def _check_department_refs(organization, *, parent=None, head=None, department=None) -> None:
    if parent is not None:
        if parent.organization_id != organization.pk:
            raise ValidationFailed(details={"parent": ["Must belong to your organization."]})
        _check_no_cycle(organization, parent=parent, department=department)
    if head is not None and head.organization_id != organization.pk:
        raise ValidationFailed(details={"head": ["Must belong to your organization."]})


def _check_no_cycle(organization, *, parent: Department, department: Department | None) -> None:
    """Walk up from ``parent`` over the organization's tree (one query). The walk is bounded by the
    departments seen: a loop already stored (rows written before this check existed) is refused too,
    instead of walking it forever."""
    parents = dict(Department.objects.for_organization(organization).values_list("pk", "parent_id"))
    seen: set = set()
    node = parent.pk
    while node is not None:
        if department is not None and node == department.pk:
            raise ValidationFailed(details={"parent": ["A department cannot be inside itself."]})
        if node in seen:
            raise ValidationFailed(
                details={"parent": ["The departments above this parent form a loop; fix them first."]}
            )
        seen.add(node)
        node = parents.get(node)


def _lock_hierarchy(organization) -> None:
    """Re-parenting decides on the whole tree: one lock per organization, so two concurrent moves
    (A under B, B under A) cannot both pass the cycle check."""
    Organization.objects.select_for_update().filter(pk=organization.pk).values_list("pk", flat=True).get()


def department_create(*, actor, organization, name: str, parent=None, head=None) -> Department:
    _check_department_refs(organization, parent=parent, head=head)
    if Department.objects.for_organization(organization).filter(name=name).exists():
        raise ValidationFailed(details={"name": ["A department with this name already exists."]})
    with transaction.atomic():
        dept = Department.objects.create(organization=organization, name=name, parent=parent, head=head)
        audit_record(
            action="department.created",
            actor=actor,
            organization=organization,
            target=dept,
            changes=model_changes(dept, None, DEPARTMENT_FIELDS),
        )
    return dept


def department_update(*, actor, department: Department, **fields) -> Department:
    org = department.organization
    if (
        "name" in fields
        and Department.objects.for_organization(org).filter(name=fields["name"]).exclude(pk=department.pk).exists()
    ):
        raise ValidationFailed(details={"name": ["A department with this name already exists."]})
    with transaction.atomic():
        if fields.get("parent") is not None:
            _lock_hierarchy(org)
        _check_department_refs(org, parent=fields.get("parent"), head=fields.get("head"), department=department)
        save_audited(
            actor=actor, instance=department, fields=fields, tracked=DEPARTMENT_FIELDS, action="department.updated"
        )
        auth_cache.everyone_changed()  # its members carry it (accounts/auth_cache.py)
    return department


def department_delete(*, actor, department: Department) -> None:
    if department.children.exists() or department.members.exists():
        raise Conflict("The department still has members or sub-departments.", code="department_in_use")
    with transaction.atomic():
        delete_audited(actor=actor, instance=department, tracked=DEPARTMENT_FIELDS, action="department.deleted")


def _calendar_changed(organization_id) -> None:
    # moves the organization's updated_at: the key of every process's cached business calendar
    Organization.objects.filter(pk=organization_id).update(updated_at=timezone.now())
    auth_cache.everyone_changed()  # and the copy every authenticated user carries (accounts/auth_cache.py)


def holiday_create(*, actor, organization, date, name: str) -> Holiday:
    if Holiday.objects.for_organization(organization).filter(date=date).exists():
        raise ValidationFailed(details={"date": ["There is already a holiday on this date."]})
    with transaction.atomic():
        holiday = Holiday.objects.create(organization=organization, date=date, name=name)
        _calendar_changed(holiday.organization_id)
        audit_record(
            action="holiday.created",
            actor=actor,
            organization=organization,
            target=holiday,
            changes=model_changes(holiday, None, HOLIDAY_FIELDS),
        )
    return holiday


def holiday_update(*, actor, holiday: Holiday, **fields) -> Holiday:
    if (
        "date" in fields
        and Holiday.objects.for_organization(holiday.organization_id)
        .filter(date=fields["date"])
        .exclude(pk=holiday.pk)
        .exists()
    ):
        raise ValidationFailed(details={"date": ["There is already a holiday on this date."]})
    with transaction.atomic():
        save_audited(actor=actor, instance=holiday, fields=fields, tracked=HOLIDAY_FIELDS, action="holiday.updated")
        _calendar_changed(holiday.organization_id)
    return holiday


def holiday_delete(*, actor, holiday: Holiday) -> None:
    with transaction.atomic():
        delete_audited(actor=actor, instance=holiday, tracked=HOLIDAY_FIELDS, action="holiday.deleted")
        _calendar_changed(holiday.organization_id)

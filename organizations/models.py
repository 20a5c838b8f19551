import datetime
import zoneinfo

from django.core.exceptions import ValidationError
from django.db import models

from core.models import TenantQuerySet, TimeStampedModel


def default_work_days() -> list[int]:
    return [0, 1, 2, 3, 4]  # Monday..Friday, Python's weekday() numbering


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}.")


def validate_work_days(value) -> None:
    if (
        not isinstance(value, list)
        or not value
        or any(d not in range(7) for d in value)
        or len(set(value)) != len(value)
    ):
        raise ValidationError("Work days are distinct weekday numbers 0 (Monday) to 6 (Sunday), at least one.")


class Organization(TimeStampedModel):
    """A tenant. Its business calendar drives SLA due dates."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    work_days = models.JSONField(default=default_work_days, validators=[validate_work_days])
    work_start = models.TimeField(default=datetime.time(9, 0))
    work_end = models.TimeField(default=datetime.time(17, 0))
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=models.Q(work_end__gt=models.F("work_start")), name="org_work_hours_order")
        ]

    def __str__(self) -> str:
        return self.name


class Department(TimeStampedModel):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="departments")
    name = models.CharField(max_length=200)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    head = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="headed_departments"
    )

    objects = models.Manager.from_queryset(TenantQuerySet)()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="uniq_department_name_per_org")]

    def __str__(self) -> str:
        return self.name


class Holiday(TimeStampedModel):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=200)

    objects = models.Manager.from_queryset(TenantQuerySet)()

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["organization", "date"], name="uniq_holiday_per_org_date")]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"

from django.db import models

from core.models import SoftDeleteModel, TenantQuerySet, TimeStampedModel


class TaskStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"


class ApprovalTask(TimeStampedModel):
    """One step of one request in one round. Created when its stage is activated."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.PROTECT, related_name="+")
    request = models.ForeignKey("requests.Request", on_delete=models.CASCADE, related_name="tasks")
    step = models.ForeignKey("workflows.Step", on_delete=models.PROTECT, related_name="tasks")
    stage = models.PositiveSmallIntegerField()
    round = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.PENDING)
    outcome_reason = models.CharField(max_length=64, blank=True, help_text="Why it settled (quorum_unreachable...).")
    activated_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # SLA: all times are absolute (UTC); business-calendar arithmetic happens when they are set.
    due_at = models.DateTimeField(null=True, blank=True)
    remind_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    next_escalation_at = models.DateTimeField(null=True, blank=True)

    objects = models.Manager.from_queryset(TenantQuerySet)()

    class Meta:
        ordering = ["stage", "created_at"]
        constraints = [models.UniqueConstraint(fields=["request", "step", "round"], name="uniq_task_per_step_round")]
        indexes = [
            # The SLA scan reads only what is due: pending tasks ordered by their next deadline.
            models.Index(
                fields=["next_escalation_at"], condition=models.Q(status="pending"), name="task_pending_escalation"
            ),
            models.Index(
                fields=["remind_at"],
                condition=models.Q(status="pending", reminded_at__isnull=True),
                name="task_pending_reminder",
            ),
            models.Index(fields=["status", "due_at"], name="task_status_due"),
            models.Index(fields=["request", "round", "stage"], name="task_request_round_stage"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} stage {self.stage} {self.step_id} ({self.status})"


class Decision(models.TextChoices):
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"


class Assignment(TimeStampedModel):
    """Who may decide a task. ``on_behalf_of`` is set when a delegate acts for the original assignee."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.PROTECT, related_name="+")
    task = models.ForeignKey(ApprovalTask, on_delete=models.CASCADE, related_name="assignments")
    assignee = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="assignments")
    on_behalf_of = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="delegated_assignments"
    )
    reason = models.CharField(
        max_length=32, default="route", help_text="route, delegation, fallback_admins, reassigned, escalation"
    )
    is_active = models.BooleanField(default=True, help_text="False once reassigned away.")
    decision = models.CharField(max_length=32, choices=Decision.choices, blank=True)
    comment = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    objects = models.Manager.from_queryset(TenantQuerySet)()

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "assignee"], condition=models.Q(is_active=True), name="uniq_active_assignee_per_task"
            )
        ]
        indexes = [models.Index(fields=["assignee", "is_active", "decision"], name="assignment_inbox")]


class Delegation(SoftDeleteModel):
    """While active, ``to_user`` sees and decides ``from_user``'s tasks (optionally for one workflow)."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.PROTECT, related_name="+")
    from_user = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="delegations_given")
    to_user = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="delegations_received")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    workflow = models.ForeignKey(
        "workflows.WorkflowDefinition", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")), name="delegation_window_order"
            ),
            models.CheckConstraint(condition=~models.Q(from_user=models.F("to_user")), name="delegation_not_self"),
        ]
        indexes = [models.Index(fields=["from_user", "starts_at", "ends_at"], name="delegation_lookup")]


class EscalationRecord(TimeStampedModel):
    """Proof that an SLA step happened; unique per (task, level) so a re-run does nothing twice.

    Level 0 is the reminder; levels 1..n are escalations.
    """

    organization = models.ForeignKey("organizations.Organization", on_delete=models.PROTECT, related_name="+")
    task = models.ForeignKey(ApprovalTask, on_delete=models.CASCADE, related_name="escalations")
    level = models.PositiveSmallIntegerField()
    action = models.CharField(max_length=32)
    target = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    details = models.JSONField(default=dict, blank=True)

    objects = models.Manager.from_queryset(TenantQuerySet)()

    class Meta:
        ordering = ["task", "level"]
        constraints = [models.UniqueConstraint(fields=["task", "level"], name="uniq_escalation_per_task_level")]

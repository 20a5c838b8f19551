from django.db import models

from core.models import SoftDeleteModel, TenantQuerySet, TimeStampedModel


class ResubmitPolicy(models.TextChoices):
    """Where a request returned for changes starts again when it is resubmitted (docs/lifecycle.md)."""

    RESTART = "restart", "Restart: every stage is asked again"
    RESTART_IF_CHANGED = "restart_if_changed", "Restart if the data changed, else resume"
    RESUME = "resume", "Resume at the stage that asked for changes"


class WorkflowDefinition(SoftDeleteModel):
    """A kind of request an organization handles (purchase, leave...). Its route lives in versions."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.PROTECT, related_name="workflows")
    key = models.SlugField(max_length=64, help_text="Stable identifier, unique in the organization.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(default=True, help_text="Inactive workflows accept no new requests.")
    reference_prefix = models.CharField(max_length=8, blank=True, help_text="Request references look like PUR-000042.")
    reference_counter = models.PositiveIntegerField(default=0, editable=False)
    resubmit_policy = models.CharField(
        max_length=32,
        choices=ResubmitPolicy.choices,
        default=ResubmitPolicy.RESTART_IF_CHANGED,
        help_text="Where a resubmitted request starts again: an approval given for one set of data "
        "does not count for another unless the workflow opts into resume.",
    )
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "key"],
                condition=models.Q(deleted_at__isnull=True),
                name="uniq_live_workflow_key_per_org",
            )
        ]

    def __str__(self) -> str:
        return self.name


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    RETIRED = "retired", "Retired"


class WorkflowVersion(TimeStampedModel):
    """An immutable-once-published route and form. Requests pin the version they start on."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.PROTECT, related_name="+")
    definition = models.ForeignKey(WorkflowDefinition, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    form_schema = models.JSONField(default=dict, blank=True, help_text="JSON Schema (2020-12) of the request data.")
    distinct_approvers = models.BooleanField(
        default=False, help_text="Separation of duties: nobody decides two steps of one request."
    )
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    objects = models.Manager.from_queryset(TenantQuerySet)()

    class Meta:
        ordering = ["definition", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["definition", "number"], name="uniq_version_number"),
            models.UniqueConstraint(
                fields=["definition"], condition=models.Q(status="draft"), name="one_draft_per_workflow"
            ),
            models.UniqueConstraint(
                fields=["definition"], condition=models.Q(status="published"), name="one_published_per_workflow"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.definition} v{self.number} ({self.status})"


class ApproverType(models.TextChoices):
    USER = "user", "A user (email or id)"
    ROLE = "role", "Everyone with a role"
    DEPARTMENT_HEAD = "department_head", "Head of the requester's department"
    REQUESTER_MANAGER = "requester_manager", "The requester's manager"
    FORM_FIELD = "form_field", "A user named in a form field"


class ApprovalMode(models.TextChoices):
    ANY = "any", "Any one assignee"
    ALL = "all", "Every assignee"
    QUORUM = "quorum", "A quorum of assignees"


class EscalateTo(models.TextChoices):
    MANAGER = "manager", "The assignee's manager"
    ROLE = "role", "A role"
    USER = "user", "A user"


class OnBreach(models.TextChoices):
    NOTIFY = "notify", "Notify"
    REASSIGN = "reassign", "Reassign"
    ADD_APPROVER = "add_approver", "Add an approver"
    AUTO_APPROVE = "auto_approve", "Approve automatically"
    AUTO_REJECT = "auto_reject", "Reject automatically"


class OnReject(models.TextChoices):
    REJECT_REQUEST = "reject_request", "Reject the request"
    RETURN_TO_REQUESTER = "return_to_requester", "Return to the requester"


class Step(TimeStampedModel):
    """One approval of a version. Steps sharing a stage run in parallel; stages run in order."""

    version = models.ForeignKey(WorkflowVersion, on_delete=models.CASCADE, related_name="steps")
    stage = models.PositiveSmallIntegerField()
    position = models.PositiveSmallIntegerField(default=0, help_text="Order within the stage (display only).")
    name = models.CharField(max_length=200)
    key = models.SlugField(
        max_length=64,
        blank=True,
        help_text="Stable identifier of the step across versions (request migration maps steps by it); "
        "empty: derived from the name.",
    )
    approver_type = models.CharField(max_length=32, choices=ApproverType.choices)
    approver_ref = models.CharField(max_length=255, blank=True)
    mode = models.CharField(max_length=16, choices=ApprovalMode.choices, default=ApprovalMode.ANY)
    quorum_count = models.PositiveSmallIntegerField(null=True, blank=True)
    condition = models.TextField(blank=True, help_text="CEL expression; false skips the step.")
    sla_hours = models.PositiveIntegerField(null=True, blank=True, help_text="Business hours.")
    reminder_at_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    escalate_to = models.CharField(max_length=16, choices=EscalateTo.choices, blank=True)
    escalate_to_ref = models.CharField(max_length=255, blank=True)
    on_breach = models.CharField(max_length=16, choices=OnBreach.choices, default=OnBreach.NOTIFY)
    escalation_repeat_hours = models.PositiveIntegerField(null=True, blank=True)
    max_escalations = models.PositiveSmallIntegerField(default=1)
    on_reject = models.CharField(max_length=32, choices=OnReject.choices, default=OnReject.REJECT_REQUEST)
    allow_self_approval = models.BooleanField(default=False)

    class Meta:
        ordering = ["version", "stage", "position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["version", "name"], name="uniq_step_name_per_version"),
            # Blank only before the validator filled it (it always does): not a key to map by.
            models.UniqueConstraint(
                fields=["version", "key"], condition=~models.Q(key=""), name="uniq_step_key_per_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stage}. {self.name}"

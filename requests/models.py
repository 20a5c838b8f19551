from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from core.models import AliveManager, SoftDeleteModel, SoftDeleteQuerySet, TenantQuerySet, TimeStampedModel


class RequestStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING = "pending", "Pending"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    CANCELLED = "cancelled", "Cancelled"


TERMINAL_STATUSES = frozenset(
    {RequestStatus.APPROVED, RequestStatus.REJECTED, RequestStatus.WITHDRAWN, RequestStatus.CANCELLED}
)


class RequestQuerySet(SoftDeleteQuerySet):
    def running(self):
        """Submitted and not finished: pending or returned for changes."""
        return self.exclude(status__in=[*TERMINAL_STATUSES, RequestStatus.DRAFT])


class RequestManager(AliveManager.from_queryset(RequestQuerySet)):
    """The alive rows, with ``running()``; a version's ``requests`` use it too (workflows sits
    below requests and asks ``version.requests.running()`` without importing this app)."""


class Request(SoftDeleteModel):
    organization = models.ForeignKey("organizations.Organization", on_delete=models.PROTECT, related_name="requests")
    workflow_version = models.ForeignKey("workflows.WorkflowVersion", on_delete=models.PROTECT, related_name="requests")
    definition = models.ForeignKey("workflows.WorkflowDefinition", on_delete=models.PROTECT, related_name="requests")
    requester = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="requests")
    department = models.ForeignKey(
        "organizations.Department",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The requester's department when the request was submitted.",
    )
    title = models.CharField(max_length=300)
    data = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    status = models.CharField(max_length=32, choices=RequestStatus.choices, default=RequestStatus.DRAFT)
    current_stage = models.PositiveSmallIntegerField(null=True, blank=True)
    round = models.PositiveSmallIntegerField(default=1)
    returned_from_stage = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The stage that asked for changes; resubmission resumes there."
    )
    returned_data_digest = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text="SHA-256 of the data when the request was returned for changes (resubmit policy).",
    )
    reference = models.CharField(max_length=32)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = RequestManager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["organization", "reference"], name="uniq_request_reference")]
        indexes = [
            models.Index(fields=["organization", "status", "-created_at"]),
            models.Index(fields=["organization", "requester", "-created_at"]),
            models.Index(fields=["organization", "definition", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class Comment(TimeStampedModel):
    organization = models.ForeignKey("organizations.Organization", on_delete=models.PROTECT, related_name="+")
    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    round = models.PositiveSmallIntegerField(default=1)

    objects = models.Manager.from_queryset(TenantQuerySet)()

    class Meta:
        ordering = ["created_at"]


def attachment_path(instance: "Attachment", filename: str) -> str:
    # The stored name is ours (uuid); the user's name is kept in ``name`` only.
    return f"attachments/{instance.organization_id}/{instance.request_id}/{instance.id}"


class Attachment(TimeStampedModel):
    organization = models.ForeignKey("organizations.Organization", on_delete=models.PROTECT, related_name="+")
    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="attachments")
    uploaded_by = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="+")
    file = models.FileField(upload_to=attachment_path, max_length=255)
    name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    content_type = models.CharField(max_length=127)
    sha256 = models.CharField(max_length=64)

    objects = models.Manager.from_queryset(TenantQuerySet)()

    class Meta:
        ordering = ["created_at"]

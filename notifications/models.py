from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from core.models import TenantQuerySet, TimeStampedModel


class Kind(models.TextChoices):
    TASK_ASSIGNED = "task_assigned", "Task assigned"
    TASK_REMINDER = "task_reminder", "Task reminder"
    TASK_ESCALATED = "task_escalated", "Task escalated"
    TASK_REASSIGNED = "task_reassigned", "Task reassigned"
    DECISION_RETRACTED = "decision_retracted", "Decision retracted"
    REQUEST_SUBMITTED = "request_submitted", "Request submitted"
    REQUEST_APPROVED = "request_approved", "Request approved"
    REQUEST_REJECTED = "request_rejected", "Request rejected"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    REQUEST_COMMENTED = "request_commented", "Request commented"
    DELEGATION_STARTED = "delegation_started", "Delegation started"
    WEBHOOK_DISABLED = "webhook_disabled", "Webhook disabled"


class Channel(models.TextChoices):
    IN_APP = "in_app", "In-app"
    EMAIL = "email", "E-mail"


class Notification(TimeStampedModel):
    """The in-app row is the source of truth; pushes and e-mails are derived from it after commit."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="+")
    recipient = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    request = models.ForeignKey("requests.Request", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    data = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = models.Manager.from_queryset(TenantQuerySet)()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["recipient", "-created_at"], name="notification_feed"),
            models.Index(fields=["recipient"], condition=models.Q(read_at__isnull=True), name="notification_unread"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.title}"


class NotificationPreference(TimeStampedModel):
    """Per user, kind and channel. No row means the default: in-app on, e-mail on."""

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="notification_preferences")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind", "channel"], name="uniq_notification_preference")]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (gave up)"


class EmailDelivery(TimeStampedModel):
    """One e-mail to send, written with its notification; sent after commit, retried until it goes."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="+")
    notification = models.OneToOneField(Notification, on_delete=models.CASCADE, related_name="email_delivery")
    to_address = models.EmailField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # After a failed attempt: not before this time (exponential backoff); the sweep honours it.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = models.Manager.from_queryset(TenantQuerySet)()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "e-mail deliveries"
        indexes = [models.Index(fields=["created_at"], condition=models.Q(status="pending"), name="email_pending")]

    def __str__(self) -> str:
        return f"{self.to_address} ({self.status})"

from django.utils import timezone
from rest_framework import serializers

from accounts.fields import UserReferenceField
from approvals.models import ApprovalTask, Assignment, Delegation, TaskStatus
from approvals.selectors import acting_for
from approvals.sla import is_task_overdue


class AssigneeSerializer(serializers.ModelSerializer):
    user = serializers.UUIDField(source="assignee_id")
    user_email = serializers.EmailField(source="assignee.email")
    on_behalf_of = serializers.UUIDField(source="on_behalf_of_id", allow_null=True)

    class Meta:
        model = Assignment
        fields = ["user", "user_email", "decision", "on_behalf_of", "comment", "decided_at", "is_active", "reason"]


class RequestTaskSerializer(serializers.ModelSerializer):
    """A task inside a request's detail."""

    step = serializers.UUIDField(source="step_id")
    step_name = serializers.CharField(source="step.name")
    mode = serializers.CharField(source="step.mode")
    assignees = AssigneeSerializer(source="assignments", many=True)
    overdue = serializers.SerializerMethodField()
    status = serializers.CharField(read_only=True, help_text="pending, approved, rejected, skipped, cancelled")

    class Meta:
        model = ApprovalTask
        fields = [
            "id",
            "step",
            "step_name",
            "mode",
            "stage",
            "round",
            "status",
            "outcome_reason",
            "activated_at",
            "completed_at",
            "due_at",
            "overdue",
            "escalation_level",
            "assignees",
        ]

    def get_overdue(self, task) -> bool:
        return is_task_overdue(task)


class TaskListSerializer(serializers.ModelSerializer):
    """An inbox item: ``{id, request, request_title, step, stage, status, due_at, on_behalf_of}``."""

    request = serializers.UUIDField(source="request_id")
    request_title = serializers.CharField(source="request.title")
    request_reference = serializers.CharField(source="request.reference")
    step = serializers.UUIDField(source="step_id")
    step_name = serializers.CharField(source="step.name")
    on_behalf_of = serializers.SerializerMethodField()
    overdue = serializers.SerializerMethodField()
    status = serializers.CharField(read_only=True, help_text="pending, approved, rejected, skipped, cancelled")

    class Meta:
        model = ApprovalTask
        fields = [
            "id",
            "request",
            "request_title",
            "request_reference",
            "step",
            "step_name",
            "stage",
            "round",
            "status",
            "due_at",
            "overdue",
            "escalation_level",
            "on_behalf_of",
        ]

    def get_overdue(self, task) -> bool:
        return is_task_overdue(task)

    def get_on_behalf_of(self, task) -> str | None:
        if hasattr(task, "has_own"):
            return acting_for(task)
        user = self.context["request"].user
        mine = [a for a in task.assignments.all() if a.assignee_id == user.pk]
        mine.sort(key=lambda a: (a.is_active, a.created_at))
        return str(mine[-1].on_behalf_of_id) if mine and mine[-1].on_behalf_of_id else None


def iso_datetime(value, zone) -> str:
    # DateTimeField.to_representation for the aware datetimes the database returns (USE_TZ):
    # in the current time zone, ISO 8601, UTC as "Z"; without its checks for naive values.
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def task_list_items(rows, *, now) -> list[dict]:
    """``TaskListSerializer``'s output for ``selectors.inbox_list_rows``: same keys, order and values.

    The list (``GET tasks/``) builds its items from the rows' values here instead of running a
    serializer over model instances (issue 14: most of the list's Python time); the tests compare
    the two on the same tasks. ``now`` decides ``overdue`` for the whole page.
    """
    zone = timezone.get_current_timezone()
    items = []
    for row in rows:
        due_at, status = row["due_at"], row["status"]
        acting = row["own_acting_for"] if row.get("has_own", True) else row["delegated_for"]
        items.append(
            {
                "id": str(row["id"]),
                "request": str(row["request_id"]),
                "request_title": row["request_title"],
                "request_reference": row["request_reference"],
                "step": str(row["step_id"]),
                "step_name": row["step_name"],
                "stage": row["stage"],
                "round": row["round"],
                "status": status,
                "due_at": iso_datetime(due_at, zone) if due_at else None,
                "overdue": status == TaskStatus.PENDING and due_at is not None and due_at < now,
                "escalation_level": row["escalation_level"],
                "on_behalf_of": str(acting) if acting else None,
            }
        )
    return items


class TaskDetailSerializer(TaskListSerializer):
    mode = serializers.CharField(source="step.mode")
    request_status = serializers.CharField(source="request.status")
    assignees = AssigneeSerializer(source="assignments", many=True)

    class Meta(TaskListSerializer.Meta):
        fields = [*TaskListSerializer.Meta.fields, "mode", "outcome_reason", "request_status", "assignees"]


# The answers of a task's detail and of a task inside a request's detail, as plain dicts: DRF builds
# a ModelSerializer's fields on every instantiation, most of the serializers' CPU in the answers of
# the create + submit and decision endpoints (issue 14). Same keys, order and values as the
# serializers, which stay the schema: approvals/tests/test_serializers.py compares them.
def _assignee_items(task, zone) -> list[dict]:
    """``AssigneeSerializer(task.assignments.all(), many=True).data``."""
    return [
        {
            "user": str(a.assignee_id),
            "user_email": a.assignee.email,
            "decision": a.decision,
            "on_behalf_of": str(a.on_behalf_of_id) if a.on_behalf_of_id else None,
            "comment": a.comment,
            "decided_at": iso_datetime(a.decided_at, zone) if a.decided_at else None,
            "is_active": a.is_active,
            "reason": a.reason,
        }
        for a in task.assignments.all()
    ]


def request_task_items(tasks, *, zone, now) -> list[dict]:
    """``RequestTaskSerializer(tasks, many=True).data``; ``now`` decides ``overdue``."""
    items = []
    for task in tasks:
        step = task.step
        activated_at, completed_at, due_at = task.activated_at, task.completed_at, task.due_at
        items.append(
            {
                "id": str(task.pk),
                "step": str(task.step_id),
                "step_name": step.name,
                "mode": str(step.mode),
                "stage": task.stage,
                "round": task.round,
                "status": str(task.status),
                "outcome_reason": task.outcome_reason,
                "activated_at": iso_datetime(activated_at, zone) if activated_at else None,
                "completed_at": iso_datetime(completed_at, zone) if completed_at else None,
                "due_at": iso_datetime(due_at, zone) if due_at else None,
                "overdue": is_task_overdue(task, now),
                "escalation_level": task.escalation_level,
                "assignees": _assignee_items(task, zone),
            }
        )
    return items


def task_detail_payload(task, *, user) -> dict:
    """``TaskDetailSerializer(task, context={"request": <user's request>}).data``."""
    zone = timezone.get_current_timezone()
    request, step, due_at = task.request, task.step, task.due_at
    if hasattr(task, "has_own"):
        acting = acting_for(task)
    else:
        mine = sorted(
            (a for a in task.assignments.all() if a.assignee_id == user.pk), key=lambda a: (a.is_active, a.created_at)
        )
        acting = str(mine[-1].on_behalf_of_id) if mine and mine[-1].on_behalf_of_id else None
    return {
        "id": str(task.pk),
        "request": str(task.request_id),
        "request_title": request.title,
        "request_reference": request.reference,
        "step": str(task.step_id),
        "step_name": step.name,
        "stage": task.stage,
        "round": task.round,
        "status": str(task.status),
        "due_at": iso_datetime(due_at, zone) if due_at else None,
        "overdue": is_task_overdue(task),
        "escalation_level": task.escalation_level,
        "on_behalf_of": acting,
        "mode": str(step.mode),
        "outcome_reason": task.outcome_reason,
        "request_status": str(request.status),
        "assignees": _assignee_items(task, zone),
    }


class DecisionSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class ReassignSerializer(serializers.Serializer):
    user = UserReferenceField()
    from_user = UserReferenceField(required=False, allow_null=True)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=32, default="reassigned")


class RetractSerializer(serializers.Serializer):
    comment = serializers.CharField(help_text="Why the decision is taken back (required).")


class AddAssigneeSerializer(serializers.Serializer):
    user = serializers.CharField(
        max_length=254, help_text="The user's id (UUID) or e-mail, of your organization (anyone else: 404)."
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class BulkApproveSerializer(serializers.Serializer):
    tasks = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=100)
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class BulkErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    http_status = serializers.IntegerField()


class BulkResultSerializer(serializers.Serializer):
    task = serializers.CharField()
    ok = serializers.BooleanField()
    status = serializers.CharField(allow_null=True)
    error = BulkErrorSerializer(required=False)


class BulkApproveResultSerializer(serializers.Serializer):
    """One result per requested task: a failure does not undo the others."""

    results = BulkResultSerializer(many=True)
    approved = serializers.IntegerField()
    failed = serializers.IntegerField()


class DelegationSerializer(serializers.ModelSerializer):
    from_user_email = serializers.EmailField(source="from_user.email", read_only=True)
    to_user_email = serializers.EmailField(source="to_user.email", read_only=True)
    is_active_now = serializers.SerializerMethodField()
    not_used_for = serializers.SerializerMethodField(
        help_text="Open tasks of the delegator this delegation is not used for: the delegate requested them "
        "and the step does not allow self-approval, so the delegator keeps them."
    )

    class Meta:
        model = Delegation
        fields = [
            "id",
            "from_user",
            "from_user_email",
            "to_user",
            "to_user_email",
            "starts_at",
            "ends_at",
            "workflow",
            "reason",
            "is_active_now",
            "not_used_for",
            "created_at",
        ]
        read_only_fields = ["id", "from_user", "created_at"]

    def get_not_used_for(self, obj) -> list[str]:
        return self.context.get("not_used_for", {}).get(obj.pk, [])

    def get_is_active_now(self, obj) -> bool:
        from django.utils import timezone

        now = timezone.now()
        return obj.starts_at <= now < obj.ends_at


class DelegationWriteSerializer(serializers.Serializer):
    to_user = UserReferenceField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    workflow = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")


class MigrateSerializer(serializers.Serializer):
    from_version = serializers.IntegerField(min_value=1)
    to_version = serializers.IntegerField(min_value=1)
    dry_run = serializers.BooleanField(default=True)
    restart = serializers.BooleanField(
        default=False, help_text="Restart (new round) requests whose completed stages would change."
    )
    requests = serializers.ListField(
        child=serializers.UUIDField(), required=False, max_length=1000, help_text="Only these requests."
    )


class MigrationResultSerializer(serializers.Serializer):
    request = serializers.UUIDField()
    reference = serializers.CharField()
    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()
    action = serializers.ChoiceField(choices=["migrate", "restart", "left_alone"])
    reason = serializers.CharField(required=False)
    changes = serializers.ListField(child=serializers.CharField())
    keep = serializers.ListField(child=serializers.CharField(), required=False)
    cancel = serializers.ListField(child=serializers.CharField(), required=False)
    activate = serializers.ListField(child=serializers.CharField(), required=False)
    settle = serializers.DictField(
        child=serializers.ChoiceField(choices=["approve", "reject"]),
        required=False,
        help_text="Kept tasks (step key) that the new step's mode decides on their standing decisions.",
    )
    errors = serializers.DictField(required=False, help_text="data_invalid: how the data misses the new form.")


class MigrateResponseSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    results = MigrationResultSerializer(many=True)
    remaining = serializers.IntegerField(help_text="Pending requests of from_version beyond this call's 200.")

"""The fixture world of the authorization matrix and mass-assignment tests, built through services.

The demo organizations (``workflows.demo_seed.seed``: acme and globex) plus the objects every
route needs: alice's pending purchase request with mark's task, a draft, a request returned for
changes, a comment, an attachment, a delegation mark -> dave, a draft workflow version, a spare
department/holiday/role. The actors are the nine of the matrix.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import Role, User
from core.testing import PASSWORD, make_user
from workflows.demo_seed import DEMO_PASSWORD, seed

ACTORS = ["anon", "requester", "peer", "assignee", "delegate", "auditor", "designer", "admin", "foreign"]


@dataclass
class World:
    users: dict = field(default_factory=dict)  # actor -> User (anon: None)
    passwords: dict = field(default_factory=dict)
    objs: dict = field(default_factory=dict)


def build_world() -> World:
    from approvals import services as approval_services
    from approvals.lifecycle import services as lifecycle
    from approvals.models import ApprovalTask, TaskStatus
    from auditlogs.models import AuditLog
    from notifications.models import Notification
    from organizations import services as org_services
    from organizations.models import Department, Organization
    from requests import services as request_services
    from workflows import services as workflow_services
    from workflows.models import VersionStatus, WorkflowDefinition

    seed()
    acme = Organization.objects.get(slug="acme")
    get = User.objects.get
    w = World()
    w.users = {
        "anon": None,
        "requester": get(email="alice@acme.example"),
        "peer": make_user(acme, "rita@acme.example", roles=["requester"]),
        "assignee": get(email="mark@acme.example"),
        "delegate": make_user(acme, "dave@acme.example", roles=["requester"]),
        "auditor": get(email="audrey@acme.example"),
        "designer": get(email="dana@acme.example"),
        "admin": get(email="admin@acme.example"),
        "foreign": get(email="admin@globex.example"),
    }
    w.passwords = {a: (PASSWORD if a in {"peer", "delegate"} else DEMO_PASSWORD) for a in ACTORS}
    alice, mark, dave = w.users["requester"], w.users["assignee"], w.users["delegate"]
    o = w.objs
    o["frank"] = get(email="frank@acme.example")
    o["workflow"] = WorkflowDefinition.objects.get(organization=acme, key="purchase-request")
    published = o["workflow"].versions.get(status=VersionStatus.PUBLISHED)

    o["request"] = request_services.request_create(
        actor=alice, workflow="purchase-request", title="Laptop", data={"amount": 900, "vendor": "Dell"}, submit=True
    )
    o["task"] = ApprovalTask.objects.get(request=o["request"], status=TaskStatus.PENDING)
    o["draft"] = request_services.request_create(
        actor=alice, workflow="purchase-request", title="Draft", data={"amount": 10, "vendor": "X"}, submit=False
    )
    returned = request_services.request_create(
        actor=alice, workflow="purchase-request", title="Returned", data={"amount": 20, "vendor": "Y"}, submit=True
    )
    returned_task = ApprovalTask.objects.get(request=returned, status=TaskStatus.PENDING)
    lifecycle.task_decide(actor=mark, task_id=returned_task.pk, decision="request_changes", comment="more")
    o["returned"] = returned
    o["comment"] = request_services.comment_add(actor=alice, request_id=o["request"].pk, body="Please hurry")
    o["attachment"] = request_services.attachment_add(
        actor=alice,
        request_id=o["request"].pk,
        file=SimpleUploadedFile("quote.pdf", b"%PDF-1.4 quote", content_type="application/pdf"),
    )
    now = timezone.now()
    o["delegation"] = approval_services.delegation_create(
        actor=mark, to_user=dave, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=7)
    )
    o["notification"] = Notification.objects.filter(recipient=mark).order_by("-created_at").first()
    assert o["notification"] is not None
    o["audit"] = AuditLog.objects.filter(organization=acme).order_by("-sequence").first()
    workflow_services.draft_from_version(actor=w.users["designer"], version=published)
    o["spare_department"] = org_services.department_create(actor=None, organization=acme, name="Spare")
    o["engineering"] = Department.objects.get(organization=acme, name="Engineering")
    o["holiday"] = org_services.holiday_create(
        actor=None, organization=acme, date=date(2030, 12, 25), name="Christmas 2030"
    )
    o["custom_role"] = Role.objects.get(organization=acme, slug="legal_approver")
    o["requester_role"] = Role.objects.get(organization=acme, slug="requester")
    o["acme"] = acme
    from webhooks import services as webhook_services

    # a public address literal: no DNS lookup; nothing is sent (no commit in these tests)
    o["webhook"] = webhook_services.endpoint_create(
        actor=w.users["admin"], organization=acme, url="https://8.8.8.8/hooks", events=["*"]
    )
    o["webhook_delivery"] = webhook_services.send_test_event(actor=w.users["admin"], endpoint=o["webhook"])
    return w


# --- the privilege-grant cases: for every catalog code, someone who holds all the others --------


@dataclass
class GrantWorld:
    """Per code X: ``lacks[X]`` holds every code but X (an API user and a staff twin for the
    admin), ``own_role[X]`` is the role giving them that, ``carrier[X]`` a role holding only X;
    ``empty`` is a role without codes that the grants try to fill."""

    lacks: dict = field(default_factory=dict)
    lacks_staff: dict = field(default_factory=dict)
    own_role: dict = field(default_factory=dict)
    carrier: dict = field(default_factory=dict)
    empty: Role | None = None


def build_grant_world(world: World) -> GrantWorld:
    from accounts.catalog import ALL_CODES
    from accounts.services import role_create, user_create

    acme = world.objs["acme"]
    g = GrantWorld(empty=role_create(actor=None, organization=acme, slug="empty", name="Empty", permissions=[]))
    for code in sorted(ALL_CODES):
        tag = code.replace(".", "-").replace("_", "-")
        g.own_role[code] = role_create(
            actor=None,
            organization=acme,
            slug=f"all-but-{tag}",
            name=f"All but {code}",
            permissions=sorted(ALL_CODES - {code}),
        )
        g.carrier[code] = role_create(
            actor=None, organization=acme, slug=f"only-{tag}", name=f"Only {code}", permissions=[code]
        )
        for staff, into in ((False, g.lacks), (True, g.lacks_staff)):
            into[code] = user_create(
                actor=None,
                organization=acme,
                email=f"lacks-{tag}{'-staff' if staff else ''}@acme.example",
                password=PASSWORD,
                is_staff=staff,
                roles=[g.own_role[code].slug],
            )
    return g

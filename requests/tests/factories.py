"""Workflows built straight from the models (any route a test needs), requests and helpers."""

import itertools

from django.utils import timezone

from core.testing import make_department, make_role, make_user
from workflows.models import Step, VersionStatus, WorkflowDefinition, WorkflowVersion
from workflows.validation import step_key_from_name

_seq = itertools.count(1)

PURCHASE_SCHEMA = {
    "type": "object",
    "properties": {
        "amount": {"type": "number", "minimum": 0},
        "vendor": {"type": "string", "minLength": 1},
        "justification": {"type": "string"},
    },
    "required": ["amount", "vendor"],
}


def make_flow(org, steps, *, key=None, form_schema=None, distinct=False, prefix="", actor=None) -> WorkflowVersion:
    """A published version with the given steps (dicts of Step fields; ``stage`` and ``name`` at least)."""
    n = next(_seq)
    definition = WorkflowDefinition.objects.create(
        organization=org, key=key or f"flow-{n}", name=f"Flow {n}", reference_prefix=prefix, created_by=actor
    )
    version = WorkflowVersion.objects.create(
        organization=org,
        definition=definition,
        number=1,
        status=VersionStatus.DRAFT,
        form_schema=PURCHASE_SCHEMA if form_schema is None else form_schema,
        distinct_approvers=distinct,
    )
    return _publish(version, steps)


def _publish(version: WorkflowVersion, steps) -> WorkflowVersion:
    for i, spec in enumerate(steps):
        spec = dict(spec)
        spec.setdefault("key", step_key_from_name(spec["name"]))
        Step.objects.create(version=version, position=spec.pop("position", i), **spec)
    # Steps are written while a draft (the database guards published ones), then it is published.
    WorkflowVersion.objects.filter(pk=version.pk).update(status=VersionStatus.PUBLISHED, published_at=timezone.now())
    version.refresh_from_db()
    return version


def next_version(version: WorkflowVersion, steps, *, form_schema=None, publish: bool = True) -> WorkflowVersion:
    """The next version of ``version``'s workflow with ``steps`` (keys from the names unless given):
    published (the published one retired) or, with ``publish=False``, left a draft."""
    definition = version.definition
    draft = WorkflowVersion.objects.create(
        organization=version.organization,
        definition=definition,
        number=definition.versions.order_by("-number").first().number + 1,
        status=VersionStatus.DRAFT,
        form_schema=version.form_schema if form_schema is None else form_schema,
        distinct_approvers=version.distinct_approvers,
    )
    if not publish:
        for i, spec in enumerate(steps):
            spec = dict(spec)
            spec.setdefault("key", step_key_from_name(spec["name"]))
            Step.objects.create(version=draft, position=spec.pop("position", i), **spec)
        return draft
    WorkflowVersion.objects.filter(definition=definition, status=VersionStatus.PUBLISHED).update(
        status=VersionStatus.RETIRED
    )
    return _publish(draft, steps)


def user_step(stage, name, user, **kw):
    return {"stage": stage, "name": name, "approver_type": "user", "approver_ref": user.email, **kw}


def role_step(stage, name, slug, **kw):
    return {"stage": stage, "name": name, "approver_type": "role", "approver_ref": slug, **kw}


class People:
    """A small org: requester (Engineering, manager mark), approvers by role, an admin."""

    def __init__(self, org):
        self.org = org
        for slug in ("finance_approver", "legal_approver", "cfo"):
            make_role(org, slug)
        self.admin = make_user(org, f"admin{next(_seq)}@{org.slug}.test", roles=["org_admin"])
        self.mark = make_user(org, f"mark{next(_seq)}@{org.slug}.test")
        self.eng = make_department(org, f"Engineering {next(_seq)}", head=self.mark)
        self.alice = make_user(org, f"alice{next(_seq)}@{org.slug}.test", department=self.eng, manager=self.mark)
        self.fiona = make_user(org, f"fiona{next(_seq)}@{org.slug}.test", roles=["requester", "finance_approver"])
        self.frank = make_user(org, f"frank{next(_seq)}@{org.slug}.test", roles=["requester", "finance_approver"])
        self.lena = make_user(org, f"lena{next(_seq)}@{org.slug}.test", roles=["requester", "legal_approver"])
        self.carl = make_user(org, f"carl{next(_seq)}@{org.slug}.test", roles=["requester", "cfo"])
        self.bob = make_user(org, f"bob{next(_seq)}@{org.slug}.test")


def purchase_flow(org, **kw) -> WorkflowVersion:
    """The demo purchase-request route (workflows/demo.py)."""
    return make_flow(
        org,
        [
            {"stage": 1, "name": "Manager approval", "approver_type": "requester_manager", "mode": "any"},
            role_step(2, "Finance review", "finance_approver", mode="all"),
            role_step(2, "Legal review", "legal_approver", mode="any", condition="amount > 5000"),
            role_step(3, "CFO approval", "cfo", mode="any", condition="amount > 10000"),
        ],
        prefix="PUR",
        **kw,
    )

"""Route resolution: which steps of a version apply to given data and who must decide them.

Pure reads: nothing here writes. The engine (``approvals.lifecycle.engine``) uses it to activate
stages; ``requests/preview-route/`` uses it to show the route without creating anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from types import MappingProxyType

from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from accounts.catalog import ORG_ADMIN_ROLE
from accounts.models import User
from accounts.selectors import users_with_role
from approvals.models import Delegation
from core.compiled_query import CompiledQuery
from core.ids import parse_uuid
from workflows.conditions import ConditionError, evaluate_condition, requester_context
from workflows.models import ApproverType, Step, VersionStatus


@dataclass
class Approver:
    user: User
    on_behalf_of: User | None = None
    reason: str = "route"  # route | delegation | fallback_admins


@dataclass
class StepPlan:
    step: Step
    applies: bool
    skip_reason: str = ""  # "condition_false"
    condition_error: str = ""  # the condition failed to evaluate: the step applies (fail safe)
    approvers: list[Approver] = field(default_factory=list)
    fallback_reason: str = ""  # why the org admins were assigned


@dataclass
class StagePlan:
    stage: int
    steps: list[StepPlan]

    @property
    def skipped(self) -> bool:
        return not any(p.applies for p in self.steps)


# The compiled route of a published (or retired) version: its steps sorted and grouped by stage,
# kept in process by version id. The database refuses changes to the steps of a version once it
# is published, so an entry never goes stale; a draft's steps are read each time. Issue 14: one
# statement and the model instantiation less on every stage activation.
_COMPILED: dict = {}
_COMPILED_MAX = 2048


def _compile(version) -> tuple[tuple[Step, ...], MappingProxyType, MappingProxyType]:
    steps = tuple(sorted(version.steps.all(), key=lambda s: (s.stage, s.position, s.name)))
    stages: dict[int, tuple[Step, ...]] = {}
    for step in steps:
        stages[step.stage] = (*stages.get(step.stage, ()), step)
    return steps, MappingProxyType(stages), MappingProxyType({s.pk: s for s in steps})


def _compiled(version) -> tuple[tuple[Step, ...], MappingProxyType, MappingProxyType]:
    if version.status == VersionStatus.DRAFT:
        return _compile(version)  # uses the prefetched steps when present
    compiled = _COMPILED.get(version.pk)
    if compiled is None:
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        compiled = _COMPILED[version.pk] = _compile(version)
    return compiled


def steps_of(version) -> list[Step]:
    return list(_compiled(version)[0])


def stages_of(version) -> MappingProxyType:
    """stage number -> its steps (a read-only mapping of tuples, shared by every caller)."""
    return _compiled(version)[1]


def step_of(version, step_id) -> Step:
    """The version's step ``step_id`` (shared by every caller: read it, do not change it)."""
    return _compiled(version)[2][step_id]


def step_applies(step: Step, *, data: dict, requester_ctx: dict) -> tuple[bool, str]:
    """(applies, error). A condition that cannot be evaluated makes the step apply (fail safe)."""
    if not (step.condition or "").strip():
        return True, ""
    try:
        return evaluate_condition(step.condition, data=data or {}, requester=requester_ctx), ""
    except ConditionError as exc:
        return True, exc.message


# Reads of every stage activation, compiled once per process (core.compiled_query; issue 14).
def _in_force(delegations, *, organization_id, at, definition_id):
    """Of ``delegations``, those in force at ``at`` for the workflow (or all workflows), with an active delegate."""
    return (
        delegations.filter(organization_id=organization_id, starts_at__lte=at, ends_at__gt=at)
        .filter(to_user__is_active=True)
        .filter(Q(workflow__isnull=True) | Q(workflow_id=definition_id))
    )


_DELEGATIONS = CompiledQuery(
    lambda organization_id, ids, at, definition_id: (
        _in_force(
            Delegation.objects.filter(from_user_id__in=ids),
            organization_id=organization_id,
            at=at,
            definition_id=definition_id,
        )
        .select_related("to_user")
        .order_by("from_user_id", "-starts_at")
    )
)


def _user_and_delegate(users, *, organization_id, at, definition_id):
    """The first of ``users`` by id and the delegate of the delegation in force for them (the most
    recent start wins), in one statement: at most two rows by id, ``routing_named`` true on the
    first one's (the delegate may be one of ``users`` too, with a later id).

    A step naming one user is the common route; its delegation read had a round trip of its own
    on every stage activation (issue 14: one statement less per decision that advances a stage)."""
    candidate = users.order_by("pk").values("pk")[:1]
    delegate = (
        _in_force(
            Delegation.objects.filter(from_user_id=Subquery(candidate)),
            organization_id=organization_id,
            at=at,
            definition_id=definition_id,
        )
        .order_by("-starts_at")
        .values("to_user_id")[:1]
    )
    return (
        User.objects.filter(Q(pk=Subquery(candidate)) | Q(pk=Subquery(delegate)))
        .annotate(routing_named=Exists(users.filter(pk=OuterRef("pk"))))
        .order_by("pk")
    )


def _named_user(lookup: str) -> CompiledQuery:
    """The organization's active user whose ``lookup`` is ``value``, with their delegate in force."""

    def build(organization_id, value, at, definition_id):
        users = User.objects.for_organization(organization_id).filter(is_active=True, **{lookup: value})
        return _user_and_delegate(users, organization_id=organization_id, at=at, definition_id=definition_id)

    return CompiledQuery(build)


_USER_BY_ID = _named_user("pk")
_USER_BY_EMAIL = _named_user("email__iexact")
_ROLE_USERS = CompiledQuery(
    lambda organization_id, slug: users_with_role(organization=organization_id, slug=slug).order_by("email")
)
_REQUESTER = CompiledQuery(lambda pk: User.objects.select_related("department__head", "manager").filter(pk=pk))


def _with_relations(requester: User) -> User:
    """``requester`` with its department (and head) and manager loaded: one statement for the
    routing reads that need them (conditions, requester_manager, department_head), not one each."""
    if requester.pk is None or (User.department.is_cached(requester) and User.manager.is_cached(requester)):
        return requester
    found = _REQUESTER.fetch(pk=requester.pk)
    if found:
        User.department.field.set_cached_value(requester, found[0].department)
        User.manager.field.set_cached_value(requester, found[0].manager)
    return requester


def _user_by_ref(organization, ref, *, definition_id, at) -> tuple[User | None, User | None]:
    """(the organization's active user ``ref`` names by id or e-mail, their delegate in force)."""
    if ref in (None, ""):
        return None, None
    values = {"organization_id": organization.pk, "at": at, "definition_id": definition_id}
    pk = parse_uuid(ref)
    found = _USER_BY_ID.fetch(value=pk, **values) if pk else _USER_BY_EMAIL.fetch(value=str(ref).strip(), **values)
    if not found:
        return None, None
    user = next(u for u in found if u.routing_named)
    return user, next((u for u in found if u is not user), None)


def _candidates(
    step: Step, *, organization, requester: User, data: dict, definition_id, at
) -> tuple[list[User], dict | None]:
    """(the users a step names, before self-approval, distinct-approver and delegation rules;
    from_user id -> delegate in force, when read with them (a step naming one user), else None)."""
    kind, ref = step.approver_type, (step.approver_ref or "").strip()
    if kind in (ApproverType.USER, ApproverType.FORM_FIELD):
        if kind == ApproverType.FORM_FIELD:
            ref = (data or {}).get(ref)
            ref = ref if isinstance(ref, (str, int)) else None
        user, delegate = _user_by_ref(organization, ref, definition_id=definition_id, at=at)
        return ([user] if user else []), ({user.pk: delegate} if user and delegate else {})
    users: list[User] = []
    if kind == ApproverType.ROLE:
        users = _ROLE_USERS.fetch(organization_id=organization.pk, slug=ref)
    elif kind == ApproverType.DEPARTMENT_HEAD:
        head = _with_relations(requester).department.head if requester.department_id else None
        users = [head] if head and head.is_active and head.organization_id == organization.pk else []
    elif kind == ApproverType.REQUESTER_MANAGER:
        manager = _with_relations(requester).manager
        users = [manager] if manager and manager.is_active and manager.organization_id == organization.pk else []
    seen: set = set()
    return [u for u in users if not (u.pk in seen or seen.add(u.pk))], None


def active_delegations(*, organization, users: Iterable[User], definition_id, at=None) -> dict:
    """from_user id -> the delegation in force for this workflow now (the most recent start wins)."""
    at = at or timezone.now()
    ids = [u.pk for u in users]
    if not ids:
        return {}
    found = _DELEGATIONS.fetch(organization_id=organization.pk, ids=ids, at=at, definition_id=definition_id)
    out: dict = {}
    for d in found:
        out.setdefault(d.from_user_id, d)
    return out


def org_admins(organization) -> list[User]:
    return _ROLE_USERS.fetch(organization_id=organization.pk, slug=ORG_ADMIN_ROLE)


def resolve_approvers(
    step: Step,
    *,
    organization,
    requester: User,
    data: dict,
    definition_id,
    distinct: bool,
    excluded_ids: set | None = None,
) -> tuple[list[Approver], str]:
    """(approvers, fallback_reason). Applies, in order: self-approval exclusion, distinct approvers,
    delegation substitution (one hop, recorded as acting for), then the org-admin fallback."""
    excluded_ids = set(excluded_ids or ())
    at = timezone.now()
    candidates, delegates = _candidates(
        step, organization=organization, requester=requester, data=data, definition_id=definition_id, at=at
    )
    reasons = []
    if not candidates:
        reasons.append("no_approver_resolved")
    if not step.allow_self_approval and any(u.pk == requester.pk for u in candidates):
        candidates = [u for u in candidates if u.pk != requester.pk]
        if not candidates:
            reasons.append("requester_excluded")
    if distinct and excluded_ids:
        before = len(candidates)
        candidates = [u for u in candidates if u.pk not in excluded_ids]
        if before and not candidates:
            reasons.append("distinct_approvers")

    if delegates is None:
        found = active_delegations(organization=organization, users=candidates, definition_id=definition_id, at=at)
        delegates = {pk: d.to_user for pk, d in found.items()}
    approvers: list[Approver] = []
    seen: set = set()
    for user in candidates:
        delegate = delegates.get(user.pk)
        if delegate is not None and (
            (delegate.pk == requester.pk and not step.allow_self_approval) or (distinct and delegate.pk in excluded_ids)
        ):
            delegate = None  # a delegate who may not decide this step: the original assignee keeps it
        approver = Approver(user=delegate, on_behalf_of=user, reason="delegation") if delegate else Approver(user=user)
        if approver.user.pk in seen:
            continue
        seen.add(approver.user.pk)
        approvers.append(approver)

    if approvers:
        return approvers, ""
    admins = [u for u in org_admins(organization) if u.pk != requester.pk] or org_admins(organization)
    return [Approver(user=u, reason="fallback_admins") for u in admins], ",".join(reasons) or "no_approver"


def plan_stage(
    steps: list[Step], *, organization, requester: User, data: dict, definition_id, distinct: bool, excluded_ids=None
) -> StagePlan:
    # the requester's context costs queries (department, manager): only when a condition reads it
    ctx = requester_context(_with_relations(requester)) if any((s.condition or "").strip() for s in steps) else {}
    plans = []
    for step in steps:
        applies, error = step_applies(step, data=data, requester_ctx=ctx)
        plan = StepPlan(step=step, applies=applies, condition_error=error)
        if not applies:
            plan.skip_reason = "condition_false"
        else:
            plan.approvers, plan.fallback_reason = resolve_approvers(
                step,
                organization=organization,
                requester=requester,
                data=data,
                definition_id=definition_id,
                distinct=distinct,
                excluded_ids=excluded_ids,
            )
        plans.append(plan)
    return StagePlan(stage=steps[0].stage if steps else 0, steps=plans)


def plan_route(*, version, requester: User, data: dict) -> list[StagePlan]:
    """Every stage of the version for this data (preview): applicability and resolved approvers."""
    return [
        plan_stage(
            steps,
            organization=version.organization,
            requester=requester,
            data=data,
            definition_id=version.definition_id,
            distinct=False,
        )
        for _, steps in sorted(stages_of(version).items())
    ]


def applicable_step_ids(version, *, stages: Iterable[int], requester: User, data: dict) -> set:
    """Ids of the steps of the given stages whose conditions hold for this data."""
    ctx = requester_context(_with_relations(requester))
    wanted = set(stages)
    return {s.pk for s in steps_of(version) if s.stage in wanted and step_applies(s, data=data, requester_ctx=ctx)[0]}

"""Who an escalation goes to, when the next one is due, and carrying out ``on_breach`` (through the
lifecycle's ``do_*`` actions, as the system).

Used by the scan (``approvals/sla_scan.py``). ``ScanLookups`` keeps what a scan reads many
times (steps, organizations and their calendars, users and their managers, role members) for
the length of one scan.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q

from accounts.models import User
from accounts.selectors import users_with_role
from approvals.lifecycle.actions import do_add_assignee, do_reassign, do_settle
from approvals.lifecycle.checks import check_reassign_target, check_user_in_org, decide_refusal
from approvals.lifecycle.events import Outbox
from approvals.lifecycle.locks import load_task, lock_task
from approvals.lifecycle.transitions import check_task
from approvals.models import Decision
from core.exceptions import ApplicationError, ValidationFailed
from core.ids import parse_uuid
from organizations.calendar import BusinessCalendar
from organizations.models import Organization
from workflows.models import EscalateTo, OnBreach, Step


class ScanLookups:
    """Reads shared by every task of one scan, each made once.

    A scan lasts seconds; a change to a user, a role or a calendar landing during it is seen by
    the next scan, exactly as if it had landed just after this one read it. (Steps of published
    versions do not change at all.)
    """

    def __init__(self) -> None:
        self._steps: dict = {}
        self._organizations: dict = {}
        self._users: dict = {}
        self._calendars: dict = {}
        self._role_members: dict = {}
        self._users_by_ref: dict = {}

    def step(self, step_id) -> Step:
        if step_id not in self._steps:
            self._steps[step_id] = Step.objects.get(pk=step_id)
        return self._steps[step_id]

    def organization(self, org_id) -> Organization:
        if org_id not in self._organizations:
            self._organizations[org_id] = Organization.objects.get(pk=org_id)
        return self._organizations[org_id]

    def users(self, ids) -> dict:
        """id -> user, with their manager loaded (one query for those not seen yet in this scan)."""
        missing = {i for i in ids if i not in self._users}
        if missing:
            for user in User.objects.filter(pk__in=missing).select_related("manager"):
                self._users[user.pk] = user
        return {i: self._users[i] for i in ids if i in self._users}

    def calendar(self, organization) -> BusinessCalendar:
        cal = self._calendars.get(organization.pk)
        if cal is None:
            cal = self._calendars[organization.pk] = BusinessCalendar.for_organization(organization)
        return cal

    def role_members(self, org_id, slug: str) -> list:
        key = (org_id, slug)
        if key not in self._role_members:
            self._role_members[key] = list(users_with_role(organization=org_id, slug=slug).order_by("email").distinct())
        return self._role_members[key]

    def users_by_ref(self, org_id, ref: str) -> list:
        """The active user named by e-mail (any case) or id."""
        ref = (ref or "").strip()
        key = (org_id, ref)
        if key not in self._users_by_ref:
            qs = User.objects.filter(organization_id=org_id, is_active=True)
            if not ref:
                found = []
            else:
                pk = parse_uuid(ref)
                found = list(qs.filter(Q(email__iexact=ref) | Q(pk=pk)) if pk else qs.filter(email__iexact=ref))
            self._users_by_ref[key] = found
        return self._users_by_ref[key]


def resolve_escalation_targets(task, assignees, lookups: ScanLookups | None = None) -> tuple[list, dict, str]:
    """Who an escalation goes to: (targets, {assignee id: their target}, note).

    ``manager``: each assignee's manager; ``role``: members of the role ``escalate_to_ref``;
    ``user``: the user named by email or id. Nobody found: the organization's admins (noted).
    An empty ``escalate_to`` means ``manager``.
    """
    lookups = lookups or ScanLookups()
    step = task.step
    org_id = task.organization_id
    how = step.escalate_to or EscalateTo.MANAGER
    per_assignee: dict = {}
    if how == EscalateTo.MANAGER:
        for a in assignees:
            m = a.manager
            if m is not None and m.is_active and m.organization_id == org_id and m.pk != a.pk:
                per_assignee[a.pk] = m
        targets = list({m.pk: m for m in per_assignee.values()}.values())
    elif how == EscalateTo.ROLE:
        targets = lookups.role_members(org_id, step.escalate_to_ref)
    else:
        targets = lookups.users_by_ref(org_id, step.escalate_to_ref)
    note = ""
    if not targets:
        targets = lookups.role_members(org_id, "org_admin")
        note = f"no {how} target found; escalated to the organization admins"
    return list(targets), per_assignee, note


def next_escalation_at(task, level: int, now, lookups: ScanLookups):
    """When level + 1 is due: ``escalation_repeat_hours`` business hours on, or None (the last level)."""
    step = task.step
    if level >= step.max_escalations or not step.escalation_repeat_hours:
        return None
    base = max(task.next_escalation_at or now, now)  # a late scan does not fire a burst of levels
    return lookups.calendar(task.organization).add_hours(base, step.escalation_repeat_hours)


_AUTO_DECISIONS = {
    OnBreach.AUTO_APPROVE: (Decision.APPROVED, "Approved automatically: SLA breached."),
    OnBreach.AUTO_REJECT: (Decision.REJECTED, "Rejected automatically: SLA breached."),
}


def perform_on_breach(task, action: str, assignees, targets, per_assignee) -> str:
    """Carry out ``on_breach`` through the lifecycle's actions (locks, checks, events), acting as the
    system. Returns a note when it fell back to notify. Runs inside the scan's batch transaction."""
    if action == OnBreach.NOTIFY:
        return ""
    outbox = Outbox(actor=None)
    try:
        with transaction.atomic():  # a savepoint: an action that cannot be applied leaves nothing
            request, locked = lock_task(organization_id=task.organization_id, task_id=task.pk)
            note = _apply(request, locked, action, assignees, targets, per_assignee, outbox)
            outbox.flush()
    except ApplicationError as exc:
        # The escalation still happened (recorded, notified, audited); the action could not be applied.
        return f"{action} not applied: {exc}"
    return note


def _apply(request, task, action: str, assignees, targets, per_assignee, outbox: Outbox) -> str:
    if action in _AUTO_DECISIONS:
        decision, comment = _AUTO_DECISIONS[action]
        check_task(task, "approve" if decision == Decision.APPROVED else "reject", request=request)
        do_settle(request, task, value=decision, comment=comment, outbox=outbox)
    elif action == OnBreach.REASSIGN:
        if not targets:
            return "reassign: no target, notified only"
        active = {u.pk for u in assignees}
        for a in assignees:
            to = per_assignee.get(a.pk) or targets[0]
            if to.pk in active:
                continue
            check_task(task, "reassign", request=request)
            target = check_user_in_org(to, request.organization_id, "user")
            source = next((x for x in task.assignments.all() if x.is_active and x.assignee_id == a.pk), None)
            if source is None:
                raise ValidationFailed(details={"from_user": ["Not an active assignee of this task."]})
            check_reassign_target(request, task, source, target)
            do_reassign(request, task, source=source, target=target, reason="escalation", outbox=outbox)
            task = load_task(task.pk, organization_id=task.organization_id)  # the assignments as they are now
            task.request = request
            active.add(to.pk)
    elif action == OnBreach.ADD_APPROVER:
        active = {u.pk for u in assignees}
        # Only people who may decide the task join it (self-approval, distinct approvers).
        refused = [u.email for u in targets if decide_refusal(request, task, {u.pk})]
        for user in targets:
            if user.pk not in active and user.email not in refused:
                check_task(task, "add_assignee", request=request)
                target = check_user_in_org(user, request.organization_id, "user")
                if any(x.is_active and x.assignee_id == target.pk for x in task.assignments.all()):
                    continue
                do_add_assignee(request, task, target=target, reason="escalation", outbox=outbox)
        if refused:
            return f"{action} not applied to {', '.join(refused)}: they may not decide this task"
    return ""

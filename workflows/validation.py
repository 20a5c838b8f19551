"""The one validator of a workflow version, used by the API, the admin and the importer.

``validate_version`` takes raw input (JSON-ish dicts) and returns the normalized steps or raises
``ValidationFailed`` whose ``details`` map a path to messages: ``form_schema``, ``steps``,
``steps[1].condition`` (0-based step index, then the field). Messages also name the step.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.utils.text import slugify
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from accounts.models import Role, User
from core.exceptions import ValidationFailed
from core.ids import parse_uuid
from core.parsers import TooDeep, check_depth
from workflows.conditions import MAX_CONDITION_CHARS, ConditionError, compile_condition
from workflows.form_schema import schema_problems
from workflows.models import ApprovalMode, ApproverType, EscalateTo, OnBreach, OnReject

# Every field of a step, in export order.
STEP_FIELDS = [
    "stage",
    "position",
    "name",
    "key",
    "approver_type",
    "approver_ref",
    "mode",
    "quorum_count",
    "condition",
    "sla_hours",
    "reminder_at_percent",
    "escalate_to",
    "escalate_to_ref",
    "on_breach",
    "escalation_repeat_hours",
    "max_escalations",
    "on_reject",
    "allow_self_approval",
]
STEP_DEFAULTS: dict[str, Any] = {
    "key": "",
    "position": 0,
    "approver_ref": "",
    "mode": ApprovalMode.ANY.value,
    "quorum_count": None,
    "condition": "",
    "sla_hours": None,
    "reminder_at_percent": None,
    "escalate_to": "",
    "escalate_to_ref": "",
    "on_breach": OnBreach.NOTIFY.value,
    "escalation_repeat_hours": None,
    "max_escalations": 1,
    "on_reject": OnReject.REJECT_REQUEST.value,
    "allow_self_approval": False,
}
REQUIRED_STEP_FIELDS = ("stage", "name", "approver_type")
MAX_SLA_HOURS = 2000  # business hours (about a year of work days)
MAX_ESCALATIONS = 10
MAX_STEPS = 50
SINGLE_ASSIGNEE_TYPES = {ApproverType.USER, ApproverType.DEPARTMENT_HEAD, ApproverType.REQUESTER_MANAGER}

_INT_FIELDS = {
    "stage": (1, 100),
    "position": (0, 1000),
    "quorum_count": (1, 1000),
    "sla_hours": (1, MAX_SLA_HOURS),
    "reminder_at_percent": (1, 99),
    "escalation_repeat_hours": (1, MAX_SLA_HOURS),
    "max_escalations": (0, MAX_ESCALATIONS),
}
_NULLABLE_INTS = {"quorum_count", "sla_hours", "reminder_at_percent", "escalation_repeat_hours"}
_CHOICES = {
    "approver_type": ApproverType.values,
    "mode": ApprovalMode.values,
    "escalate_to": ["", *EscalateTo.values],
    "on_breach": OnBreach.values,
    "on_reject": OnReject.values,
}
_STRINGS = {"name": 200, "approver_ref": 255, "condition": MAX_CONDITION_CHARS, "escalate_to_ref": 255}


class _Errors:
    def __init__(self):
        self.details: dict[str, list[str]] = {}

    def add(self, key: str, message: str) -> None:
        self.details.setdefault(key, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.details)


def form_fields(form_schema: dict) -> set[str]:
    props = form_schema.get("properties") if isinstance(form_schema, dict) else None
    return set(props) if isinstance(props, dict) else set()


def check_form_schema(form_schema: Any) -> list[str]:
    """Messages for a bad form schema (empty list when fine)."""
    if not isinstance(form_schema, dict):
        return ["Must be a JSON object (a JSON Schema)."]
    try:
        Draft202012Validator.check_schema(form_schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        return [f"Not a valid JSON Schema (draft 2020-12) at {where}: {exc.message}"]
    try:
        check_depth(form_schema, settings.JSON_MAX_DEPTH)
    except TooDeep as exc:
        return [str(exc)]
    problems = schema_problems(form_schema)
    if problems:
        return problems
    if form_schema and form_schema.get("type") != "object":
        return ['The request data is an object: the schema needs "type": "object".']
    props = form_schema.get("properties", {})
    if not isinstance(props, dict):
        return ['"properties" must be an object.']
    bad = [name for name in props if not str(name).isidentifier() or str(name) == "requester"]
    if bad:
        return [
            f"Field names must be identifiers usable in conditions (letters, digits, _) and not 'requester': "
            f"{', '.join(sorted(map(str, bad)))}."
        ]
    return []


_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def step_key_from_name(name: str) -> str:
    """The key a step gets when it has none: its name as a slug (how existing steps were keyed)."""
    return slugify(name or "")[:64].strip("-_") or "step"


def _fill_keys(steps: list[dict | None], errors: _Errors) -> None:
    """A step's key is how versions map it (request migration): given keys must be unique; a step
    without one gets its name's slug (with -2, -3... if taken)."""
    taken: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step and step.get("key"):
            if step["key"] in taken:
                errors.add(
                    f"steps[{i}].key", f"{_label(i, step)}: the key is already used by step {taken[step['key']] + 1}."
                )
            taken.setdefault(step["key"], i)
    for i, step in enumerate(steps):
        if step and not step.get("key") and f"steps[{i}].key" not in errors.details:
            base = step_key_from_name(step.get("name") or f"step-{i + 1}")
            key, n = base, 1
            while key in taken:
                n += 1
                key = f"{base[: 64 - len(str(n)) - 1]}-{n}"
            step["key"] = key
            taken[key] = i


def _label(index: int, raw: dict) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"Step {index + 1}" + (f" ({name!r})" if name else "")


def _normalize_step(index: int, raw: Any, errors: _Errors) -> dict | None:
    prefix = f"steps[{index}]"
    if not isinstance(raw, dict):
        errors.add(prefix, f"Step {index + 1}: must be an object.")
        return None
    label = _label(index, raw)
    unknown = sorted(set(raw) - set(STEP_FIELDS) - {"id"})
    if unknown:
        errors.add(prefix, f"{label}: unknown field(s) {', '.join(unknown)}.")
    step: dict[str, Any] = {}
    for field in STEP_FIELDS:
        key = f"{prefix}.{field}"
        value = raw.get(field, STEP_DEFAULTS.get(field))
        if field in REQUIRED_STEP_FIELDS and (value is None or value == ""):
            errors.add(key, f"{label}: {field} is required.")
            step[field] = None
            continue
        if field in _INT_FIELDS:
            if value in (None, "") and field in _NULLABLE_INTS:
                value = None
            elif isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                    value = int(value)
                else:
                    errors.add(key, f"{label}: {field} must be a whole number.")
                    step[field] = None
                    continue
            if value is not None:
                low, high = _INT_FIELDS[field]
                if not low <= value <= high:
                    errors.add(key, f"{label}: {field} must be between {low} and {high}.")
        elif field in _CHOICES:
            value = "" if value is None else value
            if value not in _CHOICES[field]:
                errors.add(key, f"{label}: {field} must be one of {', '.join(v for v in _CHOICES[field] if v)}.")
        elif field in _STRINGS:
            value = "" if value is None else value
            if not isinstance(value, str):
                errors.add(key, f"{label}: {field} must be a string.")
            else:
                value = value.strip()
                if len(value) > _STRINGS[field]:
                    errors.add(key, f"{label}: {field} is longer than {_STRINGS[field]} characters.")
        elif field == "key":
            value = "" if value is None else value
            if not isinstance(value, str) or (value.strip() and not _KEY.fullmatch(value.strip())):
                errors.add(key, f"{label}: key must be 1-64 lower-case letters, digits, hyphens or underscores.")
            else:
                value = value.strip()
        elif field == "allow_self_approval" and not isinstance(value, bool):
            errors.add(key, f"{label}: {field} must be true or false.")
        step[field] = value
    return step


def _user_exists(organization, ref: str) -> bool:
    qs = User.objects.for_organization(organization).filter(is_active=True)
    pk = parse_uuid(ref)
    return qs.filter(pk=pk).exists() if pk else qs.filter(email__iexact=ref).exists()


def _check_step(index: int, step: dict, organization, fields: set[str], errors: _Errors, role_sizes: dict) -> None:
    prefix = f"steps[{index}]"
    label = _label(index, step)

    def err(field: str, message: str) -> None:
        errors.add(f"{prefix}.{field}", f"{label}: {message}")

    kind, ref = step["approver_type"], step["approver_ref"]
    if kind in (ApproverType.ROLE, ApproverType.USER, ApproverType.FORM_FIELD) and not ref:
        err("approver_ref", f"approver_ref is required for approver_type {kind}.")
    elif kind == ApproverType.ROLE:
        if ref not in role_sizes:
            err("approver_ref", f"no role with slug {ref!r} in this organization.")
    elif kind == ApproverType.USER:
        if not _user_exists(organization, ref):
            err("approver_ref", f"no active user {ref!r} in this organization.")
    elif kind == ApproverType.FORM_FIELD:
        if ref not in fields:
            err("approver_ref", f"{ref!r} is not a field of the form (fields: {', '.join(sorted(fields)) or 'none'}).")
    elif kind in (ApproverType.DEPARTMENT_HEAD, ApproverType.REQUESTER_MANAGER) and ref:
        err("approver_ref", f"approver_ref must be empty for approver_type {kind}.")

    mode, quorum = step["mode"], step["quorum_count"]
    if mode == ApprovalMode.QUORUM:
        if quorum is None:
            err("quorum_count", "quorum_count is required when mode is quorum.")
        elif kind in SINGLE_ASSIGNEE_TYPES or kind == ApproverType.FORM_FIELD:
            if quorum > 1:
                err("quorum_count", f"a {kind} step has one assignee; a quorum of {quorum} can never be reached.")
        elif kind == ApproverType.ROLE and ref in role_sizes and role_sizes[ref] < quorum:
            err(
                "quorum_count",
                f"role {ref!r} has {role_sizes[ref]} active member(s); a quorum of {quorum} can never be reached.",
            )
    elif quorum is not None and mode in ApprovalMode.values:
        err("quorum_count", f"quorum_count is only for mode quorum (mode is {mode}).")

    if step["condition"]:
        try:
            compile_condition(step["condition"], allowed_fields=fields)
        except ConditionError as exc:
            err("condition", exc.message)

    sla = step["sla_hours"]
    if step["reminder_at_percent"] is not None and sla is None:
        err("reminder_at_percent", "a reminder needs sla_hours.")
    escalate_to, escalate_ref, on_breach = step["escalate_to"], step["escalate_to_ref"], step["on_breach"]
    if escalate_to and sla is None:
        err("escalate_to", "escalation needs sla_hours.")
    if on_breach != OnBreach.NOTIFY and sla is None:
        err("on_breach", f"on_breach {on_breach} needs sla_hours.")
    if on_breach in (OnBreach.REASSIGN, OnBreach.ADD_APPROVER) and not escalate_to:
        err("escalate_to", f"on_breach {on_breach} needs escalate_to (who takes over).")
    if escalate_to in (EscalateTo.ROLE, EscalateTo.USER):
        if not escalate_ref:
            err("escalate_to_ref", f"escalate_to_ref is required when escalate_to is {escalate_to}.")
        elif escalate_to == EscalateTo.ROLE and escalate_ref not in role_sizes:
            err("escalate_to_ref", f"no role with slug {escalate_ref!r} in this organization.")
        elif escalate_to == EscalateTo.USER and not _user_exists(organization, escalate_ref):
            err("escalate_to_ref", f"no active user {escalate_ref!r} in this organization.")
    elif escalate_ref:
        err("escalate_to_ref", "escalate_to_ref is only for escalate_to role or user.")
    repeat = step["escalation_repeat_hours"]
    if repeat is not None:
        if sla is None:
            err("escalation_repeat_hours", "repeated escalation needs sla_hours.")
        if step["max_escalations"] is not None and step["max_escalations"] < 2:
            err("max_escalations", "with escalation_repeat_hours, max_escalations must be at least 2.")
    if on_breach in (OnBreach.AUTO_APPROVE, OnBreach.AUTO_REJECT) and repeat is not None:
        err("escalation_repeat_hours", f"on_breach {on_breach} settles the step; it cannot repeat.")


def _role_sizes(organization) -> dict[str, int]:
    from django.db.models import Count, Q

    return dict(
        Role.objects.for_organization(organization)
        .annotate(n=Count("memberships", filter=Q(memberships__user__is_active=True)))
        .values_list("slug", "n")
    )


def validate_version(
    *, organization, form_schema: Any, steps: Any, distinct_approvers: Any = False, for_publish: bool = False
) -> list[dict]:
    """Check a whole version; return its normalized steps (sorted by stage, position) or raise ValidationFailed."""
    errors = _Errors()
    for message in check_form_schema(form_schema):
        errors.add("form_schema", message)
    fields = form_fields(form_schema) if not errors else set()
    if not isinstance(distinct_approvers, bool):
        errors.add("distinct_approvers", "Must be true or false.")
    if not isinstance(steps, list):
        errors.add("steps", "Must be a list of steps.")
        raise ValidationFailed("The workflow is not valid.", details=errors.details)
    if len(steps) > MAX_STEPS:
        errors.add("steps", f"At most {MAX_STEPS} steps.")
    if for_publish and not steps:
        errors.add("steps", "A workflow needs at least one step to be published.")

    normalized = [_normalize_step(i, raw, errors) for i, raw in enumerate(steps)]
    _fill_keys(normalized, errors)
    roles = _role_sizes(organization)
    seen_names: dict[str, int] = {}
    for i, step in enumerate(normalized):
        if step is None:
            continue
        name = step.get("name")
        if name:
            if name.lower() in seen_names:
                errors.add(
                    f"steps[{i}].name",
                    f"{_label(i, step)}: the name is already used by step {seen_names[name.lower()] + 1}.",
                )
            seen_names.setdefault(name.lower(), i)
        if any(f"steps[{i}].{f}" in errors.details for f in ("approver_type", "mode", "stage")):
            continue
        _check_step(i, step, organization, fields, errors, roles)

    # Only stages that passed their own checks: -1 or 2**63 must not reach the range arithmetic below.
    stages = sorted(
        {
            s["stage"]
            for i, s in enumerate(normalized)
            if s and isinstance(s.get("stage"), int) and f"steps[{i}].stage" not in errors.details
        }
    )
    if stages and stages != list(range(1, stages[-1] + 1)):
        missing = sorted(set(range(1, stages[-1] + 1)) - set(stages))
        first_after_gap = min(s for s in stages if s > missing[0])
        index = next(i for i, s in enumerate(normalized) if s and s.get("stage") == first_after_gap)
        errors.add(
            f"steps[{index}].stage",
            f"{_label(index, normalized[index])}: stages must be numbered 1..n without gaps; "
            f"missing stage {', '.join(map(str, missing))}.",
        )
    if errors:
        raise ValidationFailed("The workflow is not valid.", details=errors.details)
    return sorted(normalized, key=lambda s: (s["stage"], s["position"]))

"""What publishing a draft changes, compared with the version in force: steps and form fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workflows.validation import STEP_FIELDS


@dataclass
class Change:
    name: str
    details: list[str] = field(default_factory=list)  # "sla_hours: 8 -> 16"


@dataclass
class VersionDiff:
    steps_added: list[str] = field(default_factory=list)
    steps_removed: list[str] = field(default_factory=list)
    steps_changed: list[Change] = field(default_factory=list)
    fields_added: list[str] = field(default_factory=list)
    fields_removed: list[str] = field(default_factory=list)
    fields_changed: list[Change] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(
            [
                self.steps_added,
                self.steps_removed,
                self.steps_changed,
                self.fields_added,
                self.fields_removed,
                self.fields_changed,
                self.other,
            ]
        )


def _show(value: Any) -> str:
    return "(empty)" if value in (None, "", [], {}) else str(value)


def _changes(before: dict, after: dict, keys) -> list[str]:
    return [f"{k}: {_show(before.get(k))} → {_show(after.get(k))}" for k in keys if before.get(k) != after.get(k)]


def diff_versions(*, current: dict | None, draft: dict) -> VersionDiff:
    """``current``/``draft`` as ``services.version_as_dict``; ``current`` None: everything is new.

    Steps are matched by name (unique in a version); form fields by key.
    """
    diff = VersionDiff()
    current = current or {"form_schema": {"type": "object"}, "distinct_approvers": False, "steps": []}
    old_steps = {s["name"]: s for s in current["steps"]}
    new_steps = {s["name"]: s for s in draft["steps"]}
    diff.steps_added = [n for n in new_steps if n not in old_steps]
    diff.steps_removed = [n for n in old_steps if n not in new_steps]
    for name in new_steps.keys() & old_steps.keys():
        details = _changes(old_steps[name], new_steps[name], STEP_FIELDS)
        if details:
            diff.steps_changed.append(Change(name, details))
    diff.steps_changed.sort(key=lambda c: c.name)

    old_schema, new_schema = current["form_schema"] or {}, draft["form_schema"] or {}
    old_fields, new_fields = old_schema.get("properties") or {}, new_schema.get("properties") or {}
    old_req, new_req = set(old_schema.get("required") or []), set(new_schema.get("required") or [])
    diff.fields_added = [k for k in new_fields if k not in old_fields]
    diff.fields_removed = [k for k in old_fields if k not in new_fields]
    for key in sorted(new_fields.keys() & old_fields.keys()):
        before, after = old_fields[key], new_fields[key]
        details = _changes(before, after, sorted(set(before) | set(after)))
        if (key in old_req) != (key in new_req):
            details.append(f"required: {key in old_req} → {key in new_req}")
        if details:
            diff.fields_changed.append(Change(key, details))
    rest_old = {k: v for k, v in old_schema.items() if k not in ("properties", "required")}
    rest_new = {k: v for k, v in new_schema.items() if k not in ("properties", "required")}
    diff.other = [f"form {line}" for line in _changes(rest_old, rest_new, sorted(set(rest_old) | set(rest_new)))]
    if current["distinct_approvers"] != draft["distinct_approvers"]:
        diff.other.append(f"distinct approvers: {current['distinct_approvers']} → {draft['distinct_approvers']}")
    return diff

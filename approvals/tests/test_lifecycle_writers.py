"""Only the lifecycle package writes ``Request.status``, ``ApprovalTask.status`` and assignment decisions.

An AST scan of the application code (tests and migrations aside): outside ``approvals/lifecycle/``
no ``x.status = ...`` / ``x.decision = ...`` assignment, and no ``status=`` / ``decision=``
keyword in a write call (``create``, ``update``, ``bulk_create``, a model constructor ...),
except for the other models that have a status of their own (workflow versions, e-mail
deliveries), recognised by their enum.
"""

from __future__ import annotations

import ast
from pathlib import Path

from core.tests.project_apps import project_apps

ROOT = Path(__file__).resolve().parents[2]
APPS = (*project_apps(), "config")
LIFECYCLE = ROOT / "approvals" / "lifecycle"
FIELDS = {"status", "decision"}
OTHER_MODELS_ENUMS = {"VersionStatus", "DeliveryStatus"}  # statuses that are not the lifecycle's
WRITE_CALLS = {"create", "update", "get_or_create", "update_or_create", "bulk_create", "bulk_update"}
LIFECYCLE_MODELS = {"Request", "ApprovalTask", "Assignment"}


def _other_models_value(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in OTHER_MODELS_ENUMS


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def violations(source: str, filename: str = "<source>") -> list[str]:
    """``file:line what`` for every write of a lifecycle field in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr in FIELDS and not _other_models_value(node.value):
                    found.append(f"{filename}:{node.lineno} assigns .{target.attr}")
        elif isinstance(node, ast.Call):
            name = _call_name(node)
            if name in WRITE_CALLS or name in LIFECYCLE_MODELS:
                for kw in node.keywords:
                    if kw.arg in FIELDS and not _other_models_value(kw.value):
                        found.append(f"{filename}:{node.lineno} {name}({kw.arg}=...)")
            if name == "bulk_update":
                fields = node.args[1] if len(node.args) > 1 else None
                if isinstance(fields, ast.List | ast.Tuple) and any(
                    isinstance(e, ast.Constant) and e.value in FIELDS for e in fields.elts
                ):
                    found.append(f"{filename}:{node.lineno} bulk_update(..., status/decision)")
    return found


def application_files():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = set(path.relative_to(ROOT).parts)
            if "tests" in parts or "migrations" in parts or LIFECYCLE in path.parents:
                continue
            yield path


def test_only_the_lifecycle_package_writes_status_and_decisions():
    found = []
    for path in application_files():
        found += violations(path.read_text(), str(path.relative_to(ROOT)))
    assert found == [], "write these through approvals/lifecycle/ (a do_* action):\n" + "\n".join(found)


def test_the_lifecycle_package_is_where_they_are_written():
    """The scan sees the real writers (so an empty result above is not a blind scan)."""
    found = []
    for path in sorted(LIFECYCLE.rglob("*.py")):
        found += violations(path.read_text(), path.name)
    assert any("assigns .status" in f for f in found)
    assert any("assigns .decision" in f for f in found)


def test_the_scan_catches_each_kind_of_write():
    source = """
task.status = TaskStatus.APPROVED
request.status = "approved"
a.decision = "approved"
ApprovalTask.objects.filter(pk=1).update(status="cancelled")
Request.objects.create(status="pending")
Assignment(decision="approved")
ApprovalTask.objects.bulk_update(tasks, ["status"])
version.status = VersionStatus.PUBLISHED
delivery.status = DeliveryStatus.SENT
ApprovalTask.objects.filter(status="pending")
"""
    found = violations(source)
    assert [f.split(" ", 1)[0] for f in found] == [f"<source>:{n}" for n in (2, 3, 4, 5, 6, 7, 8)]

"""The import contracts (``[tool.importlinter]`` in pyproject.toml) hold, and each fails when broken.

``lint-imports`` runs on the tree as it is, then on copies of it with one forbidden import added
per case: core importing an app, a lower app importing a higher one (approvals importing the
request API included), the request data importing approvals, a cycle between two modules of an
app, a lower layer of the lifecycle importing a higher one.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.tests.project_apps import project_apps

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = project_apps()
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_contracts_are_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout


BREAKS = {
    # case -> (contract name as lint-imports prints it, file, the import added at its top)
    "core imports an app": ("core imports no app", "core/api.py", "from accounts.models import User  # noqa\n"),
    "a lower app imports a higher one": (
        "the apps in layers",
        "auditlogs/services.py",
        "from accounts.models import User  # noqa\n",
    ),
    "approvals imports the request API": (
        "the apps in layers",
        "approvals/lifecycle/locks.py",
        "from requests import services  # noqa\n",
    ),
    "the request data imports approvals": (
        "the request data",
        "requests/validation.py",
        "from approvals.models import ApprovalTask  # noqa\n",
    ),
    "a cycle between an app's modules": (
        "no cycle between the modules of an app",
        "notifications/services.py",
        "from notifications.consumers import NotificationConsumer  # noqa\n",
    ),
    "a lifecycle layer imports a higher one": (
        "the lifecycle package",
        "approvals/lifecycle/engine.py",
        "from approvals.lifecycle import actions  # noqa\n",
    ),
}


@pytest.fixture(scope="module")
def copy_of_the_tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, base / package, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    shutil.copy(ROOT / "pyproject.toml", base / "pyproject.toml")
    return base


@pytest.mark.parametrize("case", sorted(BREAKS))
def test_each_contract_fails_when_broken(copy_of_the_tree, case):
    contract, path, line = BREAKS[case]
    target = copy_of_the_tree / path
    original = target.read_text()
    target.write_text(line + original)
    try:
        result = lint_imports(copy_of_the_tree)
    finally:
        target.write_text(original)
    assert result.returncode != 0
    assert verdict(result.stdout, contract) == "BROKEN", result.stdout


def verdict(output: str, contract: str) -> str:
    """KEPT or BROKEN, as the summary says for ``contract`` (its name may wrap over two lines)."""
    text = " ".join(output.split())
    after = text[text.index(contract) :]
    return min(("KEPT", "BROKEN"), key=lambda word: after.find(word) if word in after else len(after))

"""The project documents itself: nothing points outside the repository, and docs/api.md covers the API."""

import re
import subprocess
from pathlib import Path

import pytest
from drf_spectacular.generators import SchemaGenerator

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(r"DESIGN §|DESIGN\.md|/work/")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    files = []
    for name in names:
        path = ROOT / name
        if path.suffix in {".py", ".md", ".txt", ".toml", ".cfg", ".sh", ".html", ".example", ""} and path.is_file():
            files.append(path)
    return files


def test_no_file_cites_an_outside_design_document_or_machine_paths():
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _tracked_text_files()
        if path.resolve() != Path(__file__).resolve()
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "doc", ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]
)
def test_links_stay_inside_the_repository_and_resolve(doc):
    path = ROOT / doc
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+://", target):
            continue  # an external page a reader may open; not a file of ours
        resolved = (path.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{doc} links outside the project: {target}"
        assert resolved.exists(), f"{doc} links to a missing file: {target}"


def test_api_reference_names_every_endpoint_of_the_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    reference = (ROOT / "docs" / "api.md").read_text()
    missing = []
    for route in schema["paths"]:
        words = [part for part in route.split("/") if part and not part.startswith("{")][2:]  # after api/v1
        if not all(f"{word}/" in reference for word in words):
            missing.append(route)
    assert missing == []

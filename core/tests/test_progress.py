"""Long operator commands: a progress bar on a terminal only, quiet with --quiet, a one-line summary at the end."""

import csv
import io
import os
import pty
import re
import subprocess
import sys

import pytest

from core.progress import Progress
from core.tests.servers import ROOT, embedded_database, manage


def test_progress_line_shows_bar_counts_and_rate():
    progress = Progress("verifying", total=400, unit="rows")
    progress.advance(100)
    line = progress.line(now=progress.started + 2)
    assert line == "verifying [######------------------] 100/400 rows 50/s"
    assert Progress("exporting").line() == "exporting 0 rows 0/s"  # no total: no bar


@pytest.fixture(scope="module")
def seeded_env(tmp_path_factory):
    return embedded_database(tmp_path_factory.mktemp("progress"))


def _on_a_terminal(env, *args) -> tuple[str, str]:
    """Run ``manage.py args`` with stderr on a pseudo-terminal; (stdout, what the terminal showed)."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=terminal, text=True
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            data = os.read(controller, 65536)
        except OSError:  # the other end closed
            break
        if not data:
            break
        shown += data
    stdout = proc.stdout.read()
    assert proc.wait(timeout=60) == 0, shown
    os.close(controller)
    return stdout, shown.decode()


SUMMARY = re.compile(r"^\d chain\(s\) verified: \d+ rows in \d+\.\d s \([\d,]+ rows/s\)\.$")


def test_audit_verify_draws_a_bar_on_a_terminal_and_ends_with_a_summary(seeded_env):
    stdout, shown = _on_a_terminal(seeded_env, "audit_verify")
    assert re.search(r"\r\x1b\[2Kverifying \[[#-]{24}\] \d+/\d+ rows [\d,]+/s", shown)
    assert SUMMARY.match(stdout.splitlines()[-1])

    quiet_stdout, quiet_shown = _on_a_terminal(seeded_env, "audit_verify", "--quiet")
    assert quiet_shown == "" and SUMMARY.match(quiet_stdout.splitlines()[-1])


def test_not_a_terminal_gets_no_control_characters(seeded_env):
    verified = manage(seeded_env, "audit_verify")
    assert "\r" not in verified.stderr + verified.stdout and "\x1b" not in verified.stderr
    assert SUMMARY.match(verified.stdout.splitlines()[-1])
    scanned = manage(seeded_env, "sla_scan")
    assert scanned.stderr == "" and scanned.stdout.splitlines()[-1].startswith("SLA scan at ")
    seeded = manage(seeded_env, "seed_demo")
    assert seeded.stderr == "" and re.search(r"password Demo-Pass-2026 \(\d+\.\d s\)$", seeded.stdout.strip())


def test_audit_export_keeps_stdout_for_data_and_summarizes_on_stderr(seeded_env):
    exported = manage(seeded_env, "audit_export", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert re.fullmatch(
        rf"Exported {len(rows)} audit rows as csv in \d+\.\d s \([\d,]+ rows/s\), "
        r"up to export record \d+ of its chain\.\n",
        exported.stderr,
    )
    assert manage(seeded_env, "audit_export", "--format", "jsonl", "--quiet").stderr == ""
    stdout, shown = _on_a_terminal(seeded_env, "audit_export", "--format", "jsonl")
    assert re.search(r"exporting \[[#-]{24}\] \d+/\d+ rows", shown) and "Exported " in shown
    assert all(line.startswith("{") for line in stdout.splitlines())

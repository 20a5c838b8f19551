"""manage.py audit_verify [--org SLUG]: a report per chain, exit code 1 when a chain is broken."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from auditlogs.tests.factories import raw, triggers_disabled
from core.testing import make_org

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_audit_verify_ok_for_every_chain(org, other_org):
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    text = out.getvalue()
    assert "acme-test: ok" in text and "other-test: ok" in text
    assert "chain(s) verified" in text


@pytest.mark.django_db
def test_audit_verify_reports_the_break_and_fails(org, other_org):
    with triggers_disabled():
        raw("UPDATE auditlogs_auditlog SET action = 'forged' WHERE chain = %s AND sequence = 2", [str(org.pk)])
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 1"):
        call_command("audit_verify", "--org", org.slug, stdout=out)
    assert "acme-test: BROKEN at sequence 2 (hash_mismatch" in out.getvalue()
    call_command("audit_verify", "--org", other_org.slug, stdout=io.StringIO())  # the other chain is fine
    with pytest.raises(CommandError):
        call_command("audit_verify", stdout=io.StringIO())


@pytest.mark.django_db
def test_audit_verify_unknown_org(db):
    with pytest.raises(CommandError, match="No organization"):
        call_command("audit_verify", "--org", "nope", stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_audit_verify_process_exit_codes():
    org = make_org("exit-code-org")
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }

    def run():
        return subprocess.run(
            [sys.executable, "manage.py", "audit_verify", "--org", org.slug],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    ok = run()
    assert ok.returncode == 0, ok.stderr
    assert "exit-code-org: ok" in ok.stdout
    with triggers_disabled():
        raw("DELETE FROM auditlogs_auditlog WHERE chain = %s AND sequence = 2", [str(org.pk)])
    broken = run()
    assert broken.returncode == 1
    assert "BROKEN at sequence 2 (sequence_gap" in broken.stdout

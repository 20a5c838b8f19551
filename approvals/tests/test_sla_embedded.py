"""The embedded default escalates too: core/embedded.py runs core/periodic.py in-process."""

import datetime as dt

import pytest
from django.utils import timezone

from approvals.models import EscalationRecord
from approvals.tests.test_sla_support import make_sla_task
from core import embedded
from core.embedded import EmbeddedScheduler, is_serving_process, should_start
from core.periodic import periodic_tasks
from core.testing import make_user


def test_never_starts_under_pytest_even_when_enabled(settings):
    settings.EMBEDDED_SCHEDULER = True
    assert should_start(["/x/.venv/bin/daphne", "config.asgi:application"], {}) is False
    assert embedded.maybe_start() is None


def test_only_serving_processes_run_it():
    assert is_serving_process(["/x/.venv/bin/daphne", "-p", "8000", "config.asgi:application"], {})
    assert is_serving_process(["manage.py", "runserver"], {"RUN_MAIN": "true"})
    assert is_serving_process(["manage.py", "runserver", "--noreload"], {})
    assert not is_serving_process(["manage.py", "runserver"], {})  # the autoreloader's watcher
    for command in ("migrate", "seed_demo", "shell", "sla_scan", "collectstatic"):
        assert not is_serving_process(["manage.py", command], {"RUN_MAIN": "true"})
    assert not is_serving_process(["/x/.venv/bin/celery", "-A", "config", "worker"], {})
    assert not is_serving_process(["/x/.venv/bin/pytest", "-q"], {})


def test_setting_defaults_off_with_a_broker(settings):
    # config/settings.py: EMBEDDED_SCHEDULER = not CELERY_BROKER_URL and env EMBEDDED_SCHEDULER
    assert settings.CELERY_BROKER_URL and settings.EMBEDDED_SCHEDULER is False


def test_runner_runs_the_periodic_sla_scan_at_its_interval(org, requester, settings):
    boss = make_user(org, "boss@acme-test.test")
    approver = make_user(org, "approver@acme-test.test", manager=boss)
    task = make_sla_task(
        org, assignees=[approver], requester=requester, activated_at=timezone.now() - dt.timedelta(days=30)
    )
    runner = EmbeddedScheduler(periodic_tasks())
    assert "sla-scan" in runner.run_due(now=1000.0)  # everything runs once at start
    assert EscalationRecord.objects.filter(task=task, level=1).count() == 1
    assert runner.run_due(now=1000.0 + settings.SLA_SCAN_INTERVAL_SECONDS - 1) == []
    assert "sla-scan" in runner.run_due(now=1000.0 + settings.SLA_SCAN_INTERVAL_SECONDS)
    assert EscalationRecord.objects.filter(task=task).count() == 1  # nothing twice


@pytest.mark.django_db(transaction=True)
def test_a_failing_task_does_not_stop_the_runner():
    runner = EmbeddedScheduler({"boom": ("core.embedded.no_such_task", 5), "ok": ("time.monotonic", 5)})
    assert runner.run_due(now=0.0) == ["boom", "ok"]
    runner.start()
    runner.stop()
    assert not runner.thread.is_alive()

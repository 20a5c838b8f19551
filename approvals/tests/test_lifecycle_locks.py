"""Lock helpers refuse another organization's id before locking anything.

Another connection (a real thread) holds the row lock of an organization's request; asking for that
row with another organization's id answers 404 at once, because the organization is part of the
locking query: nothing was locked, nothing was waited for. The same id with the right
organization does wait (the control that shows the row really is held).
"""

import threading

import pytest
from django.conf import settings
from django.db import OperationalError, connection, transaction

from approvals.lifecycle.locks import lock_request, lock_task
from approvals.tests.test_engine import open_task, submit
from core.exceptions import NotFound
from requests.models import Request
from requests.tests.factories import People, make_flow, user_step

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL (row locks, lock_timeout)"),
]


@pytest.fixture
def held(org):
    """A request (and its task) of ``org`` whose request and task rows another connection holds locked."""
    p = People(org)
    rid = submit(p.alice, make_flow(org, [user_step(1, "Manager", p.mark)]))["id"]
    task = open_task(rid)
    locked, release = threading.Event(), threading.Event()

    def holder():
        try:
            with transaction.atomic():
                lock_task(organization_id=org.pk, task_id=task.pk)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    assert locked.wait(10)
    yield Request.objects.get(pk=rid), task
    release.set()
    thread.join(30)


def _with_lock_timeout(fn):
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SET LOCAL lock_timeout = '300ms'")
        return fn()


def test_another_organizations_request_id_is_404_without_waiting(held, other_org):
    request, _ = held
    with pytest.raises(NotFound):
        _with_lock_timeout(lambda: lock_request(organization_id=other_org.pk, pk=request.pk))


def test_another_organizations_task_id_is_404_without_waiting(held, other_org):
    _, task = held
    with pytest.raises(NotFound):
        _with_lock_timeout(lambda: lock_task(organization_id=other_org.pk, task_id=task.pk))


def test_the_right_organization_waits_for_the_held_rows(held, org):
    request, task = held
    with pytest.raises(OperationalError, match="lock timeout"):
        _with_lock_timeout(lambda: lock_request(organization_id=org.pk, pk=request.pk))
    with pytest.raises(OperationalError, match="lock timeout"):
        _with_lock_timeout(lambda: lock_task(organization_id=org.pk, task_id=task.pk))


def test_malformed_ids_are_404(org):
    for bad in ("not-a-uuid", "", None, 42):
        with pytest.raises(NotFound), transaction.atomic():
            lock_request(organization_id=org.pk, pk=bad)
        with pytest.raises(NotFound), transaction.atomic():
            lock_task(organization_id=org.pk, task_id=bad)

"""Department hierarchy: never a cycle, and the walk that checks it always ends (issue 13.3)."""

import signal
import threading
from contextlib import contextmanager

import pytest
from django.db import connection

from core.exceptions import ValidationFailed
from core.testing import api_client, error_code, make_department
from organizations import services
from organizations.models import Department


@contextmanager
def deadline(seconds: float):
    """Fail instead of hanging when the code under test loops (main thread, Unix)."""

    def expire(*_):
        raise TimeoutError(f"did not return within {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.django_db
def test_patch_under_a_stored_loop_answers_400_and_changes_nothing(org, admin_user):
    a = make_department(org, "A")
    b = make_department(org, "B", parent=a)
    c = make_department(org, "C")
    # A loop as the admin used to save it, before it called the service.
    Department.objects.filter(pk=a.pk).update(parent=b)

    with deadline(10):
        response = api_client(admin_user).patch(f"/api/v1/departments/{c.pk}/", {"parent": str(a.pk)}, format="json")

    assert response.status_code == 400, response.content
    assert error_code(response) == "validation_error"
    assert "loop" in response.json()["error"]["details"]["parent"][0]
    c.refresh_from_db()
    assert c.parent_id is None


@pytest.mark.django_db
def test_patch_into_own_subtree_answers_400(org, admin_user):
    a = make_department(org, "A")
    b = make_department(org, "B", parent=a)
    grandchild = make_department(org, "C", parent=b)

    response = api_client(admin_user).patch(
        f"/api/v1/departments/{a.pk}/", {"parent": str(grandchild.pk)}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["details"]["parent"] == ["A department cannot be inside itself."]
    a.refresh_from_db()
    assert a.parent_id is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_cross_moves_never_leave_a_cycle(org, admin_user):
    """A under B and B under A at the same moment: the hierarchy lock lets one through, the other is refused."""
    a = make_department(org, "A")
    b = make_department(org, "B")
    start = threading.Barrier(2)
    outcomes = []

    def move(child, parent):
        try:
            start.wait()
            services.department_update(actor=admin_user, department=Department.objects.get(pk=child.pk), parent=parent)
            outcomes.append("moved")
        except ValidationFailed:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=move, args=pair) for pair in [(a, b), (b, a)]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert sorted(outcomes) == ["moved", "refused"]
    parents = dict(Department.objects.filter(pk__in=[a.pk, b.pk]).values_list("pk", "parent_id"))
    assert not (parents[a.pk] == b.pk and parents[b.pk] == a.pk)

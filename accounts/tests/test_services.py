"""Account services under concurrency: reporting lines never form a cycle (issue 19.8)."""

import threading

import pytest
from django.db import connection

from accounts import services
from accounts.models import User
from core.exceptions import ValidationFailed
from core.testing import make_org, make_user

ROUNDS = 5


@pytest.mark.django_db(transaction=True)
def test_opposite_manager_changes_at_once_never_make_a_cycle():
    """mark -> alice and alice -> mark together, real threads and connections: one wins, the other is refused."""
    org = make_org()
    for round_ in range(ROUNDS):
        mark = make_user(org, f"mark{round_}@race.test")
        alice = make_user(org, f"alice{round_}@race.test")
        barrier = threading.Barrier(2)
        outcomes: dict = {}

        def change(user_id, manager_id, outcomes=outcomes, barrier=barrier):
            try:
                user, manager = User.objects.get(pk=user_id), User.objects.get(pk=manager_id)
                barrier.wait(timeout=10)
                services.user_update(actor=None, user=user, manager=manager)
                outcomes[user_id] = "ok"
            except ValidationFailed as exc:
                outcomes[user_id] = exc.details
            finally:
                connection.close()

        threads = [
            threading.Thread(target=change, args=(alice.pk, mark.pk)),
            threading.Thread(target=change, args=(mark.pk, alice.pk)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(map(str, outcomes.values())).count("ok") == 1, outcomes
        refused = next(v for v in outcomes.values() if v != "ok")
        assert "cycle" in refused["manager"][0]
        managers = dict(User.objects.filter(pk__in=[mark.pk, alice.pk]).values_list("pk", "manager_id"))
        assert not (managers[mark.pk] == alice.pk and managers[alice.pk] == mark.pk), managers

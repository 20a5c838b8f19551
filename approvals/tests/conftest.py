import pytest

from core.testing import make_user


@pytest.fixture
def people(org, requester):
    """An approver with a manager (the escalation target) and an org admin (the fallback)."""
    boss = make_user(org, "boss@acme-test.test", roles=["requester"])
    approver = make_user(org, "approver@acme-test.test", roles=["requester"], manager=boss)
    admin = make_user(org, "admin@acme-test.test", roles=["org_admin"])
    return {"boss": boss, "approver": approver, "admin": admin, "requester": requester}

import copy

from core.testing import make_role, make_user
from workflows import services
from workflows.demo import PURCHASE_REQUEST


def purchase_spec(**overrides) -> dict:
    spec = copy.deepcopy(PURCHASE_REQUEST)
    spec.update(overrides)
    return spec


def make_roles(org):
    for slug in ("finance_approver", "legal_approver", "cfo"):
        make_role(org, slug)
    make_user(org, roles=["finance_approver"])
    make_user(org, roles=["finance_approver"])
    make_user(org, roles=["legal_approver"])
    make_user(org, roles=["cfo"])


def make_workflow(org, actor=None, publish=True, **overrides):
    make_roles(org)
    spec = purchase_spec(**overrides)
    definition = services.workflow_create(actor=actor, organization=org, **spec)
    if publish:
        services.version_publish(actor=actor, version=definition.versions.get(status="draft"))
    return definition

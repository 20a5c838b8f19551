"""The demo workflows (docs/architecture.md, "Demo data"), published. Idempotent: an existing key is left as it is."""

from workflows import selectors, services
from workflows.models import VersionStatus

PURCHASE_REQUEST = {
    "key": "purchase-request",
    "name": "Purchase request",
    "description": "Buy goods or services from a vendor.",
    "category": "Finance",
    "reference_prefix": "PUR",
    "form_schema": {
        "type": "object",
        "properties": {
            "amount": {"type": "number", "minimum": 0, "title": "Amount"},
            "vendor": {"type": "string", "minLength": 1, "title": "Vendor"},
            "justification": {"type": "string", "title": "Justification"},
        },
        "required": ["amount", "vendor"],
    },
    "steps": [
        {"stage": 1, "name": "Manager approval", "approver_type": "requester_manager", "mode": "any", "sla_hours": 8},
        {
            "stage": 2,
            "position": 0,
            "name": "Finance review",
            "approver_type": "role",
            "approver_ref": "finance_approver",
            "mode": "all",
            "sla_hours": 16,
        },
        {
            "stage": 2,
            "position": 1,
            "name": "Legal review",
            "approver_type": "role",
            "approver_ref": "legal_approver",
            "mode": "any",
            "condition": "amount > 5000",
        },
        {
            "stage": 3,
            "name": "CFO approval",
            "approver_type": "role",
            "approver_ref": "cfo",
            "mode": "any",
            "condition": "amount > 10000",
        },
    ],
}

LEAVE_REQUEST = {
    "key": "leave-request",
    "name": "Leave request",
    "description": "Time off.",
    "category": "HR",
    "reference_prefix": "LEA",
    "form_schema": {
        "type": "object",
        "properties": {
            "start_date": {"type": "string", "format": "date", "title": "First day"},
            "end_date": {"type": "string", "format": "date", "title": "Last day"},
            "reason": {"type": "string", "title": "Reason"},
        },
        "required": ["start_date", "end_date"],
    },
    "steps": [
        {"stage": 1, "name": "Manager approval", "approver_type": "requester_manager", "mode": "any", "sla_hours": 16}
    ],
}

EXPENSE_CLAIM = {
    "key": "expense-claim",
    "name": "Expense claim",
    "description": "Reimbursement of expenses paid by an employee.",
    "category": "Finance",
    "reference_prefix": "EXP",
    "form_schema": {
        "type": "object",
        "properties": {
            "amount": {"type": "number", "minimum": 0, "title": "Amount"},
            "description": {"type": "string", "minLength": 1, "title": "What for"},
            "expense_date": {"type": "string", "format": "date", "title": "Date"},
        },
        "required": ["amount", "description"],
    },
    "steps": [
        {"stage": 1, "name": "Manager approval", "approver_type": "requester_manager", "mode": "any", "sla_hours": 8},
        {
            "stage": 2,
            "name": "Finance check",
            "approver_type": "role",
            "approver_ref": "finance_approver",
            "mode": "any",
            "condition": "amount > 500",
            "sla_hours": 16,
        },
    ],
}

DEMO_WORKFLOWS = [PURCHASE_REQUEST, LEAVE_REQUEST, EXPENSE_CLAIM]


def seed_workflows(*, organization, actor) -> list[str]:
    """Create and publish the demo workflows that do not exist yet; return every demo key."""
    keys = []
    for spec in DEMO_WORKFLOWS:
        spec = {**spec}
        keys.append(spec["key"])
        existing = selectors.definitions_for(organization=organization).filter(key=spec["key"]).first()
        if existing is not None and existing.versions.filter(status=VersionStatus.PUBLISHED).exists():
            continue
        if existing is None:
            existing = services.workflow_create(actor=actor, organization=organization, **spec)
        draft = selectors.draft_for(definition=existing)
        if draft is not None:
            services.version_publish(actor=actor, version=draft)
    return keys

"""The demo data (docs/architecture.md, "Demo data"): organizations, people and roles, then the
workflows of ``workflows/demo.py``. Idempotent: running it twice changes nothing the second time.

It lives in ``workflows``, the app above ``accounts`` and ``organizations``, so that ``core``
imports no app (the import contracts).
"""

from django.db import transaction

from accounts import services as account_services
from accounts.models import Role, User
from organizations import services as org_services
from organizations.models import Department, Organization

DEMO_PASSWORD = "Demo-Pass-2026"

ACME_ROLES = {
    "finance_approver": ("Finance approver", ["requests.create"]),
    "legal_approver": ("Legal approver", ["requests.create"]),
    "cfo": ("Chief financial officer", ["requests.create", "reports.view"]),
}

# email, first, last, department, manager email, roles, staff, title
ACME_USERS = [
    ("admin@acme.example", "Ada", "Admin", None, None, ["org_admin"], True, "IT administrator"),
    ("mark@acme.example", "Mark", "Manning", "Engineering", None, ["requester"], False, "Head of Engineering"),
    ("alice@acme.example", "Alice", "Anders", "Engineering", "mark@acme.example", ["requester"], False, "Engineer"),
    ("fiona@acme.example", "Fiona", "Fisher", "Finance", None, ["requester", "finance_approver"], False, "Accountant"),
    ("frank@acme.example", "Frank", "Fuller", "Finance", None, ["requester", "finance_approver"], False, "Controller"),
    ("lena@acme.example", "Lena", "Lawson", "Legal", None, ["requester", "legal_approver"], False, "Counsel"),
    ("carl@acme.example", "Carl", "Carter", "Finance", None, ["requester", "cfo"], False, "CFO"),
    ("dana@acme.example", "Dana", "Designer", "Operations", None, ["workflow_designer"], True, "Process designer"),
    ("audrey@acme.example", "Audrey", "Auditor", "Finance", None, ["auditor"], False, "Internal auditor"),
]
GLOBEX_USERS = [
    ("admin@globex.example", "Gina", "Globex", None, None, ["org_admin"], True, "Administrator"),
    ("gary@globex.example", "Gary", "Green", None, None, ["requester"], False, "Engineer"),
]


def _org(slug: str, name: str) -> Organization:
    org = Organization.objects.filter(slug=slug).first()
    return org or org_services.organization_create(name=name, slug=slug, timezone="Europe/Berlin")


def _department(org, name: str) -> Department:
    dept = Department.objects.for_organization(org).filter(name=name).first()
    return dept or org_services.department_create(actor=None, organization=org, name=name)


def _users(org, rows) -> dict[str, User]:
    users: dict[str, User] = {}
    for email, first, last, dept_name, manager_email, roles, staff, title in rows:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = account_services.user_create(
                actor=None,
                organization=org,
                email=email,
                password=DEMO_PASSWORD,
                first_name=first,
                last_name=last,
                department=_department(org, dept_name) if dept_name else None,
                manager=users.get(manager_email),
                title=title,
                is_staff=staff,
                roles=roles,
            )
        users[email] = user
    return users


SEED_STEPS = 4  # organizations and roles, acme's people, globex's people, workflows


@transaction.atomic
def seed(on_step=None) -> dict:
    """``on_step(1)``, when given, hears of each of the ``SEED_STEPS`` steps done (progress bars)."""
    step = on_step or (lambda n: None)
    acme = _org("acme", "Acme Corp")
    for slug, (name, codes) in ACME_ROLES.items():
        if not Role.objects.for_organization(acme).filter(slug=slug).exists():
            account_services.role_create(actor=None, organization=acme, slug=slug, name=name, permissions=codes)
    step(1)
    acme_users = _users(acme, ACME_USERS)
    step(1)
    engineering = _department(acme, "Engineering")
    if engineering.head_id is None:
        org_services.department_update(actor=None, department=engineering, head=acme_users["mark@acme.example"])
    globex = _org("globex", "Globex Inc")
    _users(globex, GLOBEX_USERS)
    step(1)

    from workflows.demo import seed_workflows

    workflows = seed_workflows(organization=acme, actor=acme_users["dana@acme.example"])
    step(1)
    return {"organizations": [acme.slug, globex.slug], "workflows": workflows}

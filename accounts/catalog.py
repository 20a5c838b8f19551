"""The permission catalog: the only permission codes a role may hold (docs/api.md, "Permissions")."""

from auditlogs.permissions import AUDIT_VIEW

ORG_MANAGE = "org.manage"
USERS_MANAGE = "users.manage"
ROLES_MANAGE = "roles.manage"
WORKFLOWS_MANAGE = "workflows.manage"
REQUESTS_CREATE = "requests.create"
REQUESTS_VIEW_ALL = "requests.view_all"
REQUESTS_CANCEL_ANY = "requests.cancel_any"
REPORTS_VIEW = "reports.view"
WEBHOOKS_MANAGE = "webhooks.manage"
TASKS_MANAGE = "tasks.manage"

CATALOG: dict[str, str] = {
    ORG_MANAGE: "Manage the organization, departments and holidays",
    USERS_MANAGE: "Manage users",
    ROLES_MANAGE: "Manage roles and their members",
    WORKFLOWS_MANAGE: "Design and publish workflows",
    REQUESTS_CREATE: "Submit requests",
    REQUESTS_VIEW_ALL: "See every request of the organization",
    REQUESTS_CANCEL_ANY: "Cancel any request",
    AUDIT_VIEW: "Read and export the audit log",
    REPORTS_VIEW: "Read reports",
    WEBHOOKS_MANAGE: "Manage outgoing webhooks and see their deliveries",
    TASKS_MANAGE: "Add approvers to any pending task",
}

ALL_CODES = frozenset(CATALOG)

# Built-in roles every organization gets (slug -> (name, codes)).
BUILTIN_ROLES: dict[str, tuple[str, frozenset[str]]] = {
    "org_admin": ("Organization admin", ALL_CODES),
    "workflow_designer": ("Workflow designer", frozenset({WORKFLOWS_MANAGE, REQUESTS_CREATE, REPORTS_VIEW})),
    "requester": ("Requester", frozenset({REQUESTS_CREATE})),
    "auditor": ("Auditor", frozenset({AUDIT_VIEW, REQUESTS_VIEW_ALL, REPORTS_VIEW})),
}
ORG_ADMIN_ROLE = "org_admin"
DEFAULT_ROLE = "requester"

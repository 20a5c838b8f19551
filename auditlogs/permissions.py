"""The audit log's permission code. auditlogs sits below accounts (docs/architecture.md, "App
layers"), so the code is declared here and the permission catalog (``accounts.catalog``) lists it."""

AUDIT_VIEW = "audit.view"

from django.apps import AppConfig


class AuditlogsConfig(AppConfig):
    name = "auditlogs"
    verbose_name = "Audit log"

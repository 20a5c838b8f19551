"""Existing organizations' built-in org_admin roles get the new code webhooks.manage (new ones get it at creation)."""

from django.db import migrations

CODE = "webhooks.manage"


def grant(apps, schema_editor):
    Role = apps.get_model("accounts", "Role")
    for role in Role.objects.filter(slug="org_admin", is_builtin=True):
        if CODE not in role.permissions:
            role.permissions = sorted([*role.permissions, CODE])
            role.save(update_fields=["permissions"])


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0001_initial"), ("accounts", "0004_login_account_counter")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

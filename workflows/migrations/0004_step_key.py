"""Steps get a stable ``key`` (request migration maps the steps of two versions by it).

Existing steps are keyed by their name's slug (``workflows.validation.step_key_from_name``), made
unique within their version: a step copied from version to version kept its name, so it keeps one
key across versions. Published and retired steps are immutable (trigger of migration 0002): the
trigger is switched off for this one update, in this migration's transaction.
"""

from django.db import migrations, models
from django.utils.text import slugify


def _key(name: str) -> str:
    return slugify(name or "")[:64].strip("-_") or "step"


def fill_keys(apps, schema_editor):
    Step = apps.get_model("workflows", "Step")
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        schema_editor.execute("ALTER TABLE workflows_step DISABLE TRIGGER workflows_step_guard")
    changed = []
    taken: dict = {}
    for step in Step.objects.order_by("version_id", "stage", "position", "name").only("id", "version_id", "name"):
        used = taken.setdefault(step.version_id, set())
        base = key = _key(step.name)
        n = 1
        while key in used:
            n += 1
            key = f"{base[: 64 - len(str(n)) - 1]}-{n}"
        used.add(key)
        step.key = key
        changed.append(step)
    Step.objects.bulk_update(changed, ["key"], batch_size=500)
    if postgres:
        schema_editor.execute("ALTER TABLE workflows_step ENABLE TRIGGER workflows_step_guard")


class Migration(migrations.Migration):
    dependencies = [("workflows", "0003_workflowdefinition_resubmit_policy")]

    operations = [
        migrations.AddField(
            model_name="step",
            name="key",
            field=models.SlugField(
                blank=True,
                help_text="Stable identifier of the step across versions (request migration maps steps by it); "
                "empty: derived from the name.",
                max_length=64,
            ),
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="step",
            constraint=models.UniqueConstraint(
                condition=models.Q(("key", ""), _negated=True),
                fields=("version", "key"),
                name="uniq_step_key_per_version",
            ),
        ),
    ]

"""Migration 0004 keys the steps that existed before ``Step.key`` (issue 16.4)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = [("workflows", "0003_workflowdefinition_resubmit_policy")], [("workflows", "0004_step_key")]


@pytest.mark.django_db(transaction=True)
def test_existing_steps_published_ones_too_get_their_names_slug_unique_per_version(org):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Definition = apps.get_model("workflows", "WorkflowDefinition")
    Version = apps.get_model("workflows", "WorkflowVersion")
    Step = apps.get_model("workflows", "Step")
    definition = Definition.objects.create(organization_id=org.pk, key="old-flow", name="Old flow")
    version = Version.objects.create(organization_id=org.pk, definition=definition, number=1, status="draft")
    for stage, name in [(1, "Finance review"), (2, "Finance  Review!"), (3, "Légal")]:
        Step.objects.create(version=version, stage=stage, name=name, approver_type="requester_manager")
    Version.objects.filter(pk=version.pk).update(status="published")  # its steps are immutable from here on

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    try:
        Step = executor.loader.project_state(AFTER).apps.get_model("workflows", "Step")
        keys = list(Step.objects.filter(version_id=version.pk).order_by("stage").values_list("key", flat=True))
        assert keys == ["finance-review", "finance-review-2", "legal"]
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())

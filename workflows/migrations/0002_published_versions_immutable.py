"""Database guard: published and retired versions (and their steps) cannot change.

The service checks first (``workflows.services``); these PostgreSQL triggers refuse any write that
bypasses it. The only change allowed to a non-draft version is published -> retired.
SQLite (the embedded default) relies on the service check alone.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION workflows_version_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'workflow version % is %, it cannot be deleted', OLD.id, OLD.status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'draft' THEN
        IF NEW.form_schema IS DISTINCT FROM OLD.form_schema
           OR NEW.distinct_approvers IS DISTINCT FROM OLD.distinct_approvers
           OR NEW.number IS DISTINCT FROM OLD.number
           OR NEW.definition_id IS DISTINCT FROM OLD.definition_id
           OR NEW.organization_id IS DISTINCT FROM OLD.organization_id
           OR NEW.published_at IS DISTINCT FROM OLD.published_at
           OR NOT (NEW.status = OLD.status OR (OLD.status = 'published' AND NEW.status = 'retired')) THEN
            RAISE EXCEPTION 'workflow version % is %, it is immutable', OLD.id, OLD.status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION workflows_step_guard() RETURNS trigger AS $$
DECLARE
    st varchar;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT status INTO st FROM workflows_workflowversion WHERE id = OLD.version_id;
        IF st IS NOT NULL AND st <> 'draft' THEN
            RAISE EXCEPTION 'steps of a % workflow version are immutable', st
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT status INTO st FROM workflows_workflowversion WHERE id = NEW.version_id;
        IF st IS NOT NULL AND st <> 'draft' THEN
            RAISE EXCEPTION 'steps of a % workflow version are immutable', st
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END IF;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS workflows_version_guard ON workflows_workflowversion;
CREATE TRIGGER workflows_version_guard BEFORE UPDATE OR DELETE ON workflows_workflowversion
    FOR EACH ROW EXECUTE FUNCTION workflows_version_guard();
DROP TRIGGER IF EXISTS workflows_step_guard ON workflows_step;
CREATE TRIGGER workflows_step_guard BEFORE INSERT OR UPDATE OR DELETE ON workflows_step
    FOR EACH ROW EXECUTE FUNCTION workflows_step_guard();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS workflows_step_guard ON workflows_step;
DROP TRIGGER IF EXISTS workflows_version_guard ON workflows_workflowversion;
DROP FUNCTION IF EXISTS workflows_step_guard();
DROP FUNCTION IF EXISTS workflows_version_guard();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("workflows", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]

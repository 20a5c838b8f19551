"""PostgreSQL refuses UPDATE, DELETE and TRUNCATE on auditlogs_auditlog.

Row triggers reject UPDATE and DELETE; a statement trigger rejects TRUNCATE unless
the session set ``auditlogs.allow_truncate = on`` AND the database is a test database
(``test_*``): the test settings set it so the runner can empty the database between
transactional tests; a production database never honours it (see docs/audit.md). Other databases (the embedded
SQLite default) get nothing: the model and queryset refuse changes there.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION auditlogs_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND current_database() LIKE 'test\_%'
       AND coalesce(current_setting('auditlogs.allow_truncate', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'auditlogs_auditlog is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Audit rows can only be inserted (see docs/audit.md).';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS auditlogs_auditlog_no_update_delete ON auditlogs_auditlog;
CREATE TRIGGER auditlogs_auditlog_no_update_delete
    BEFORE UPDATE OR DELETE ON auditlogs_auditlog
    FOR EACH ROW EXECUTE FUNCTION auditlogs_refuse_change();

DROP TRIGGER IF EXISTS auditlogs_auditlog_no_truncate ON auditlogs_auditlog;
CREATE TRIGGER auditlogs_auditlog_no_truncate
    BEFORE TRUNCATE ON auditlogs_auditlog
    FOR EACH STATEMENT EXECUTE FUNCTION auditlogs_refuse_change();
"""

REVERSE = r"""
DROP TRIGGER IF EXISTS auditlogs_auditlog_no_truncate ON auditlogs_auditlog;
DROP TRIGGER IF EXISTS auditlogs_auditlog_no_update_delete ON auditlogs_auditlog;
DROP FUNCTION IF EXISTS auditlogs_refuse_change();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def reverse(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE, params=None)


class Migration(migrations.Migration):
    dependencies = [("auditlogs", "0001_initial")]

    operations = [migrations.RunPython(forward, reverse)]

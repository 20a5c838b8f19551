"""GET audit-logs/export/ and manage.py audit_export: streamed, constant memory, audited."""

import csv
import io
import json
import types

import pytest
from django.core.management import call_command
from django.test import AsyncClient

from auditlogs.chain import GENESIS_HASH, compute_hash, payload_from_values
from auditlogs.export import aiter_sync, guarded, iter_export
from auditlogs.models import AuditLog
from auditlogs.services import audit_record
from auditlogs.tests.factories import bulk_chain, org_rows
from core.testing import api_client, error_code, make_org, make_user

EXPORT = "/api/v1/audit-logs/export/"


@pytest.fixture
def auditor(org):
    return make_user(org, "auditor@acme-test.test", roles=["auditor"])


def peak_rss_growth(fn):
    """Run ``fn``; return (its result, how far the process's peak RSS rose above the RSS it started at).

    Linux only (/proc/self/clear_refs "5" resets the peak). Unlike tracemalloc it costs nothing per
    allocation, so a 100k-row stream can be watched in full; it counts every byte the process maps,
    so a streamed export stays at a few MB while one held in memory shows its whole size.
    """

    def status(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    start = status("VmRSS")
    result = fn()
    return result, status("VmHWM") - start


def body_of(response) -> str:
    return b"".join(response.streaming_content).decode()


@pytest.mark.django_db
def test_csv_export_streams_the_callers_rows_and_is_audited(org, other_org, auditor):
    audit_record(action="other.secret", organization=other_org)
    response = api_client(auditor).get(EXPORT, {"format": "csv"}, HTTP_USER_AGENT="exporter/1")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-acme-test-')
    assert response["Content-Disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(body_of(response))))
    exported = AuditLog.objects.get(action="audit.exported")
    # Everything before the export's own row, in order, and nothing of the other org.
    assert [int(r["sequence"]) for r in rows] == list(range(1, exported.sequence))
    assert {r["chain"] for r in rows} == {str(org.pk)}
    assert exported.actor_id == auditor.pk and exported.chain == str(org.pk)
    assert exported.changes == {"format": "csv", "filters": {}}
    assert exported.user_agent == "exporter/1"
    assert response["X-Audit-Export-Sequence"] == str(exported.sequence)


@pytest.mark.django_db
def test_csv_cells_that_look_like_formulas_are_defused(org, auditor):
    audit_record(action="test.formula", organization=org, target_repr='=HYPERLINK("http://evil")')
    body = body_of(api_client(auditor).get(EXPORT, {"format": "csv", "action": "test.formula"}))
    row = next(csv.DictReader(io.StringIO(body)))
    assert row["target_repr"] == '\'=HYPERLINK("http://evil")'


@pytest.mark.django_db
def test_jsonl_export_is_exact_and_the_chain_can_be_rechecked_from_it(org, auditor, admin_user):
    audit_record(action="test.unicode", actor=admin_user, organization=org, changes={"name": ["Zoë", "日本 🚀"]})
    response = api_client(auditor).get(EXPORT, {"format": "jsonl"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    lines = [json.loads(line) for line in body_of(response).splitlines()]
    assert any(r["changes"] == {"name": ["Zoë", "日本 🚀"]} for r in lines)
    prev = GENESIS_HASH
    for row in lines:
        assert row["prev_hash"] == prev
        assert compute_hash(prev, payload_from_values(row)) == row["hash"]
        prev = row["hash"]


@pytest.mark.django_db
def test_export_filters_apply_and_are_recorded(org, auditor, admin_user):
    audit_record(action="thing.done", actor=admin_user, organization=org)
    audit_record(action="thing.other", actor=admin_user, organization=org)
    response = api_client(auditor).get(EXPORT, {"format": "jsonl", "action": "thing.done", "actor": str(admin_user.pk)})
    lines = [json.loads(line) for line in body_of(response).splitlines()]
    assert [r["action"] for r in lines] == ["thing.done"]
    exported = AuditLog.objects.get(action="audit.exported")
    assert exported.changes == {"format": "jsonl", "filters": {"action": "thing.done", "actor": str(admin_user.pk)}}


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{}, {"format": "xml"}, {"format": "CSV"}, {"format": "csv", "since": "soon"}])
def test_bad_format_or_filter_is_a_400_envelope_and_not_audited(org, auditor, params):
    response = api_client(auditor).get(EXPORT, params)
    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert set(response.json()["error"]["details"]) == ({"since"} if "since" in params else {"format"})
    assert not AuditLog.objects.filter(action="audit.exported").exists()


@pytest.mark.django_db
def test_100k_rows_stream_in_constant_memory(org, auditor):
    bulk_chain(org, 100_000)
    response = api_client(auditor).get(EXPORT, {"format": "csv"})
    assert response.status_code == 200
    assert response.streaming
    assert isinstance(response.streaming_content, (types.GeneratorType, map))
    total_bytes = lines = 0

    def consume():
        nonlocal total_bytes, lines
        for chunk in response.streaming_content:
            total_bytes += len(chunk)
            lines += chunk.count(b"\n")

    _, growth_csv = peak_rss_growth(consume)
    rows_before_export = AuditLog.objects.get(action="audit.exported").sequence - 1
    assert lines == rows_before_export + 1  # + header
    assert rows_before_export >= 100_000
    assert total_bytes > 40_000_000
    # The whole export is ~40 MB; a streamed one never holds more than a chunk or two of rows.
    assert growth_csv < total_bytes / 10, (growth_csv, total_bytes)

    # manage.py audit_export streams the same way (jsonl this time), to a sink that keeps nothing.
    class Sink(io.TextIOBase):
        written = 0

        def write(self, s):
            self.written += len(s)
            return len(s)

    sink = Sink()
    _, growth_jsonl = peak_rss_growth(
        lambda: call_command("audit_export", "--format", "jsonl", "--org", org.slug, stdout=sink)
    )
    assert sink.written > 50_000_000
    assert growth_jsonl < sink.written / 10, (growth_jsonl, sink.written)
    # The measure is meaningful: the same rows held in memory instead of streamed show up in full.
    held, growth_held = peak_rss_growth(lambda: b"".join(iter_export(org_rows(org), "jsonl")))
    assert growth_held > len(held) / 2, (growth_held, len(held))
    del held

    # and verification streams too
    from auditlogs.verify import verify_chain

    result, growth = peak_rss_growth(lambda: verify_chain(organization=org))
    assert result["ok"] and result["checked"] == org_rows(org).count()
    assert growth < 8_000_000, growth
    print(f"peak RSS growth: csv api {growth_csv}, jsonl command {growth_jsonl}, held {growth_held}, verify {growth}")


@pytest.mark.django_db
def test_audit_export_command(org, other_org):
    out = io.StringIO()
    call_command("audit_export", "--format", "csv", "--org", org.slug, stdout=out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows and {r["chain"] for r in rows} == {str(org.pk)}
    exported = AuditLog.objects.get(action="audit.exported", chain=str(org.pk))
    assert exported.actor_id is None and exported.actor_repr == "system"
    assert exported.changes["format"] == "csv" and exported.changes["filters"]["org"] == org.slug
    assert [int(r["sequence"]) for r in rows] == list(range(1, exported.sequence))

    everything = io.StringIO()
    call_command("audit_export", "--format", "jsonl", stdout=everything)
    chains = {json.loads(line)["chain"] for line in everything.getvalue().splitlines()}
    assert {str(org.pk), str(other_org.pk)} <= chains
    assert AuditLog.objects.filter(action="audit.exported", chain="platform").count() == 1

    future = io.StringIO()
    call_command("audit_export", "--format", "jsonl", "--org", org.slug, "--since", "2999-01-01", stdout=future)
    assert future.getvalue() == ""


@pytest.mark.django_db
def test_audit_export_command_rejects_bad_arguments(org):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("audit_export", "--format", "csv", "--org", "nope", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("audit_export", "--format", "csv", "--since", "not-a-date", stdout=io.StringIO())
    assert not AuditLog.objects.filter(action="audit.exported").exists()


@pytest.mark.django_db(transaction=True)
def test_export_streams_under_asgi_too():
    org = make_org("asgi-org")
    auditor = make_user(org, "auditor@asgi.test", roles=["auditor"])
    bulk_chain(org, 1200)
    token = api_client(auditor)._credentials["HTTP_AUTHORIZATION"]

    async def fetch():
        response = await AsyncClient().get(EXPORT, {"format": "jsonl"}, headers={"Authorization": token})
        assert response.status_code == 200
        assert response.is_async  # an async iterator: Django does not buffer it into a list
        return b"".join([chunk async for chunk in response.streaming_content])

    from asgiref.sync import async_to_sync

    body = async_to_sync(fetch)()
    assert len(body.splitlines()) == AuditLog.objects.get(action="audit.exported").sequence - 1


def _fails_after_one_chunk():
    yield b"id,chain\r\n"
    raise RuntimeError("connection lost")


@pytest.mark.parametrize(
    ("fmt", "last_line"),
    [
        ("csv", "#error,export_failed,The export failed part-way; this file is incomplete."),
        (
            "jsonl",
            '{"error": {"code": "export_failed", "message": "The export failed part-way; this file is incomplete."}}',
        ),
    ],
)
def test_a_stream_that_fails_part_way_ends_with_an_error_record(fmt, last_line, caplog):
    body = b"".join(guarded(_fails_after_one_chunk(), fmt)).decode()
    assert body.startswith("id,chain\r\n")
    assert body.splitlines()[-1] == last_line
    assert "audit export failed mid-stream" in caplog.text


@pytest.mark.asyncio
async def test_a_failing_stream_served_over_asgi_ends_instead_of_hanging():
    chunks = [chunk async for chunk in aiter_sync(guarded(_fails_after_one_chunk(), "jsonl"))]
    assert json.loads(chunks[-1])["error"]["code"] == "export_failed"

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import DatabaseError

from auditlogs.export import FORMATS, iter_export
from auditlogs.models import AuditLog
from auditlogs.selectors import audit_logs_for, organization_by_slug
from auditlogs.services import record_export
from core.filters import InstantField
from core.progress import ProgressCommand


def _parse_since(value: str):
    """The API's parser (core.filters.InstantField): the same values are accepted and refused."""
    try:
        return InstantField().clean(value)
    except ValidationError:
        raise CommandError(f"--since: not an ISO 8601 date or datetime: {value!r}") from None


class Command(ProgressCommand):
    help = "Stream audit rows to stdout as CSV or JSON lines (constant memory). The export itself is audited."

    def add_arguments(self, parser):
        parser.add_argument("--format", required=True, choices=sorted(FORMATS), dest="fmt")
        parser.add_argument("--since", help="ISO 8601 date or datetime (inclusive).")
        parser.add_argument("--org", help="Organization slug (default: every chain).")

    def handle(self, *args, fmt, since=None, org=None, **options):
        filters = {"since": since, "org": org, "via": "manage.py audit_export"}
        since_dt = _parse_since(since) if since else None
        if org:
            organization = organization_by_slug(org)
            if organization is None:
                raise CommandError(f"No organization with slug {org!r}.")
            record = record_export(actor=None, organization=organization, fmt=fmt, filters=filters)
            queryset = audit_logs_for(organization=organization).filter(sequence__lt=record.sequence)
        else:
            record = record_export(actor=None, organization=None, fmt=fmt, filters=filters)
            queryset = AuditLog.objects.filter(id__lt=record.id).order_by("chain", "sequence")
        if since_dt is not None:
            queryset = queryset.filter(created_at__gte=since_dt)
        progress = self.progress("exporting")
        if progress.enabled:  # the count is one more query: only for the bar
            progress.set_total(queryset.count())
        try:
            with progress:
                for chunk in iter_export(queryset, fmt, on_rows=progress.advance):
                    self.stdout.write(chunk.decode(), ending="")
        except DatabaseError as exc:
            raise CommandError(f"export failed part-way (output incomplete): {exc}".splitlines()[0])
        self.stdout.flush()
        # stdout carries the data: the summary goes to stderr
        self.summary(
            f"Exported {progress.count:,} audit rows as {fmt} in {progress.elapsed:.1f} s "
            f"({progress.rate():,.0f} rows/s), up to export record {record.sequence} of its chain."
        )

"""Print a workflow definition (its published version, else its draft) as JSON: definitions as code."""

from django.core.management.base import BaseCommand, CommandError

from core.exceptions import NotFound
from workflows.io import dumps, export_document
from workflows.management.commands._org import resolve_org


class Command(BaseCommand):
    help = "Print workflow KEY as JSON (published version, else the draft)."

    def add_arguments(self, parser):
        parser.add_argument("key")
        parser.add_argument("--org", help="Organization slug (needed when there are several).")

    def handle(self, *args, key, org=None, **options):
        organization = resolve_org(org, key=key)
        try:
            document = export_document(organization=organization, key=key)
        except NotFound as exc:
            raise CommandError(f"{exc.message} ({key!r} in {organization.slug})") from None
        self.stdout.write(dumps(document), ending="")

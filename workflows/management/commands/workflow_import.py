"""Validate a workflow JSON file and create the workflow or replace its draft (then --publish)."""

import json
from pathlib import Path

from django.core.management.base import CommandError

from core.exceptions import ApplicationError
from core.progress import ProgressCommand
from workflows.io import import_document
from workflows.management.commands._org import resolve_org


class Command(ProgressCommand):
    help = "Import a workflow from a JSON file (as printed by workflow_export)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path to the JSON file, or - for stdin.")
        parser.add_argument("--org", help="Organization slug (needed when there are several).")
        parser.add_argument("--publish", action="store_true", help="Publish the imported draft.")

    def handle(self, *args, file, org=None, publish=False, **options):
        import sys

        try:
            text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
            document = json.loads(text)
        except (OSError, json.JSONDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from None
        key = document.get("key") if isinstance(document, dict) and isinstance(document.get("key"), str) else None
        organization = resolve_org(org, key=key)
        try:
            definition, what = import_document(
                organization=organization, actor=None, document=document, publish=publish
            )
        except ApplicationError as exc:
            lines = [exc.message, *(f"  {k}: {' '.join(v)}" for k, v in (exc.details or {}).items())]
            raise CommandError("\n".join(lines)) from None
        self.stdout.write(f"{definition.key}: {what}.")  # the one-line summary (one document: no bar)

"""``manage.py workflow_migrate KEY --from N --to M [--dry-run] [--restart] [--org SLUG]`` (issue 16.4)."""

import json

from django.core.management.base import BaseCommand, CommandError

from approvals.lifecycle.services import workflow_migrate
from core.exceptions import ApplicationError
from workflows.management.commands._org import resolve_org
from workflows.models import WorkflowDefinition


class Command(BaseCommand):
    help = "Move the pending requests of a workflow version to its published version (one JSON line each)."

    def add_arguments(self, parser):
        parser.add_argument("key")
        parser.add_argument("--from", dest="from_version", type=int, required=True)
        parser.add_argument("--to", dest="to_version", type=int, required=True)
        parser.add_argument("--dry-run", action="store_true", help="List what would happen; change nothing.")
        parser.add_argument("--restart", action="store_true", help="Restart requests whose completed stages change.")
        parser.add_argument("--org", default=None)

    def handle(self, *args, key, from_version, to_version, dry_run, restart, org, **options):
        organization = resolve_org(org, key=key)
        definition = WorkflowDefinition.objects.filter(organization=organization, key=key).first()
        if definition is None:
            raise CommandError(f"No workflow {key!r} in {organization.slug}.")
        results, remaining, seen = [], 0, set()
        while True:  # the service takes 200 per call; a run goes on while calls move requests
            try:
                run = workflow_migrate(
                    actor=None,
                    organization_id=organization.pk,
                    workflow_id=definition.pk,
                    from_version=from_version,
                    to_version=to_version,
                    dry_run=dry_run,
                    restart=restart,
                )
            except ApplicationError as exc:
                raise CommandError(f"{exc.message} {json.dumps(exc.details)}") from None
            new = [r for r in run["results"] if r["request"] not in seen]  # left alone: looked at again
            for result in new:
                self.stdout.write(json.dumps(result))
            seen.update(r["request"] for r in new)
            results += new
            remaining = run["remaining"]
            moved_now = any(r["action"] != "left_alone" for r in run["results"])
            if dry_run or not remaining or not moved_now:
                break
        moved = sum(1 for r in results if r["action"] != "left_alone")
        verb = "would move" if dry_run else "moved"
        self.stdout.write(
            f"{verb} {moved} of {len(results)} requests" + (f"; {remaining} not looked at" if remaining else "")
        )

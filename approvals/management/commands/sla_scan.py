from approvals.sla_scan import run_scan
from core.progress import ProgressCommand


class Command(ProgressCommand):
    help = "Run one SLA scan: send due reminders and perform due escalations (--dry-run: only print them)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print what would be done; change nothing.")
        parser.add_argument("--limit", type=int, default=None, help="At most this many tasks per kind.")

    def handle(self, *args, dry_run=False, limit=None, **options):
        with self.progress("scanning", unit="tasks") as progress:
            report = run_scan(dry_run=dry_run, limit=limit, on_tasks=progress.advance)
        # One line per reminder/escalation, then the summary line (report.lines() ends with it).
        for line in report.lines():
            self.stdout.write(line)
        if report.errors:
            self.stderr.write(f"{len(report.errors)} task(s) failed; they are retried by the next scan.")

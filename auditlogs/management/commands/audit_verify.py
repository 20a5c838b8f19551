import time

from django.core.management.base import CommandError

from auditlogs.models import AuditChainHead
from auditlogs.selectors import organization_by_slug, organizations_all
from auditlogs.verify import all_chains, chain_of, verify_chain
from core.progress import ProgressCommand


class Command(ProgressCommand):
    help = "Recompute the audit hash chain of one organization (--org SLUG) or of every chain. Exit 1 when broken."

    def add_arguments(self, parser):
        parser.add_argument("--org", help="Organization slug (default: every chain, the platform one included).")

    def handle(self, *args, org=None, **options):
        if org:
            organization = organization_by_slug(org)
            if organization is None:
                raise CommandError(f"No organization with slug {org!r}.")
            chains = [chain_of(organization)]
        else:
            chains = all_chains()
        names = {str(pk): slug for pk, slug in organizations_all().values_list("pk", "slug")}
        expected = sum(AuditChainHead.objects.filter(chain__in=chains).values_list("sequence", flat=True))
        broken, rows, started = 0, 0, time.monotonic()
        with self.progress("verifying", total=expected) as progress:
            for chain in chains:
                result = verify_chain(chain=chain, on_rows=progress.advance)
                rows += result["checked"]
                label = names.get(chain, chain)
                progress.close()  # the chain's line replaces the bar
                if result["ok"]:
                    self.stdout.write(f"{label}: ok, {result['checked']} rows")
                else:
                    broken += 1
                    self.stdout.write(
                        f"{label}: BROKEN at sequence {result['first_bad']} ({result['reason']}, row id "
                        f"{result['first_bad_id']}), {result['checked']} rows read"
                    )
        seconds = time.monotonic() - started
        if broken:
            raise CommandError(f"{broken} of {len(chains)} audit chain(s) failed verification ({rows:,} rows read).")
        rate = rows / seconds if seconds > 0 else 0
        self.stdout.write(f"{len(chains)} chain(s) verified: {rows:,} rows in {seconds:.1f} s ({rate:,.0f} rows/s).")

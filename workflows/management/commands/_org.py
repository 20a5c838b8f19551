from django.core.management.base import CommandError

from organizations.models import Organization
from workflows.selectors import organization_slugs_with_workflow


def resolve_org(slug: str | None, *, key: str | None = None) -> Organization:
    """The organization named by ``--org``; without it the only one there is, or the only one with workflow ``key``."""
    if slug:
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            raise CommandError(f"No organization {slug!r}.")
        return org
    orgs = list(Organization.objects.order_by("slug"))
    if len(orgs) == 1:
        return orgs[0]
    if not orgs:
        raise CommandError("No organization exists yet (manage.py seed_demo creates the demo ones).")
    if key is not None:
        holders = organization_slugs_with_workflow(key=key)
        if len(holders) == 1:
            return Organization.objects.get(slug=holders[0])
        if holders:
            raise CommandError(
                f"Workflow {key!r} exists in several organizations ({', '.join(holders)}): add --org SLUG."
            )
    raise CommandError(f"Several organizations exist ({', '.join(o.slug for o in orgs)}): add --org SLUG.")

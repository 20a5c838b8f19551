from django.core.management.base import CommandError

from organizations.models import Organization


def resolve_org(slug: str | None) -> Organization:
    if slug:
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            raise CommandError(f"No organization {slug!r}.")
        return org
    orgs = list(Organization.objects.all()[:2])
    if len(orgs) != 1:
        raise CommandError("Several organizations exist: name one with --org SLUG.")
    return orgs[0]

"""Migrate the provider's database and register the relying party (argv: client id, secret, redirect URI)."""

import sys

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from oauth2_provider.models import get_application_model  # noqa: E402

call_command("migrate", verbosity=0)
client_id, secret, redirect_uri = sys.argv[1:4]
get_application_model().objects.create(
    name="workflow",
    client_id=client_id,
    client_secret=secret,
    client_type="confidential",
    authorization_grant_type="authorization-code",
    redirect_uris=redirect_uri,
    algorithm="RS256",
    skip_authorization=True,
)

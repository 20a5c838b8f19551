from django.core.management.base import BaseCommand

from core.demo import DEMO_PASSWORD, seed


class Command(BaseCommand):
    help = "Create the demo organizations, users, roles and workflows of DESIGN §5 (idempotent)."

    def handle(self, *args, **options):
        result = seed()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: orgs {', '.join(result['organizations'])}; "
                f"workflows {', '.join(result['workflows']) or '-'}; password {DEMO_PASSWORD}"
            )
        )

from core.progress import ProgressCommand
from workflows.demo_seed import DEMO_PASSWORD, SEED_STEPS, seed


class Command(ProgressCommand):
    help = "Create the demo organizations, users, roles and workflows (idempotent)."

    def handle(self, *args, **options):
        with self.progress("seeding", total=SEED_STEPS, unit="steps") as progress:
            result = seed(on_step=progress.advance)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: orgs {', '.join(result['organizations'])}; "
                f"workflows {', '.join(result['workflows']) or '-'}; password {DEMO_PASSWORD} "
                f"({progress.elapsed:.1f} s)"
            )
        )

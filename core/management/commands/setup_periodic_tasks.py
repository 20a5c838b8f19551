from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from core.periodic import periodic_tasks


class Command(BaseCommand):
    help = "Create or update the Celery beat schedule (DatabaseScheduler) from core/periodic.py. Idempotent."

    @transaction.atomic
    def handle(self, *args, **options):
        for name, (task, seconds) in periodic_tasks().items():
            interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
            _, created = PeriodicTask.objects.update_or_create(
                name=name, defaults={"task": task, "interval": interval, "enabled": True}
            )
            self.stdout.write(f"{'created' if created else 'updated'} {name}: {task} every {seconds}s")

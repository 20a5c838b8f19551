from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # The embedded default's in-process periodic runner (off unless settings.EMBEDDED_SCHEDULER).
        from core.embedded import maybe_start

        maybe_start()

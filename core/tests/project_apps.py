"""The project's own Django apps, for the checks that must cover every one of them."""

from pathlib import Path

from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]


def project_apps() -> list[str]:
    """The installed apps whose package is at the top of the repository (a new app is covered at once)."""
    return sorted(config.name for config in apps.get_app_configs() if Path(config.path).parent == ROOT)

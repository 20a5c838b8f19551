"""Entry points (manage.py, ASGI, WSGI) refuse an unsafe configuration with one line, not a traceback."""

import sys
from collections.abc import Callable
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")
GUNICORN_BOOT_ERROR = 3


def or_refuse(start: Callable[[], T]) -> T:
    """Run ``start``; on ``ImproperlyConfigured`` print ``Refusing to start: <reason>`` on stderr and exit 1.

    The reason is all an operator needs (settings name the variable to fix); a traceback
    through Django's setup only hides it.
    """
    try:
        return start()
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"Refusing to start: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}\n")
        # In a gunicorn worker, exit code 3 (its WORKER_BOOT_ERROR) makes the master stop instead of
        # starting the worker again and again.
        sys.exit(GUNICORN_BOOT_ERROR if "gunicorn.workers.base" in sys.modules else 1)

# The app ``requests/`` shadows the PyPI ``requests`` library in every process started
# from the project root. DRF probes for that library (its optional RequestsClient) and
# would find our app instead; tell it the library is absent before anything imports it.
import rest_framework.compat

rest_framework.compat.requests = None

from config.celery import app as celery_app  # noqa: E402

__all__ = ("celery_app",)

import os

from django.core.wsgi import get_wsgi_application

from config.startup import or_refuse

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def _start():
    from core import tracing

    tracing.configure("workflow-web")  # before the handler loads its middleware (off: does nothing)
    return get_wsgi_application()


application = or_refuse(_start)

import os
import sys
import tempfile

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

if "worker" in sys.argv[1:] and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # A prefork worker's child processes each record metrics, merged from files at scrape time
    # (prometheus_client multiprocess mode). The directory must be known before prometheus_client
    # is imported, that is now: the celery command loads this module first.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-worker-")

if os.path.basename(sys.argv[0]) == "celery":
    # A worker or beat reads the settings lazily, deep in its start-up: load them now, so that an
    # unsafe configuration refuses with one line (config/startup.py) rather than a traceback.
    from django.conf import settings

    from config.startup import or_refuse

    or_refuse(lambda: settings.SECRET_KEY)

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_process_init.connect
def _trace_pool_process(**kwargs):
    # In each pool process, after the fork: span exporters run a thread, which a fork does not copy.
    from core import tracing

    tracing.configure("workflow-worker")


@signals.task_prerun.connect
def _task_started(task_id=None, task=None, **kwargs):
    from core import celery_metrics

    celery_metrics.started(task_id)


@signals.task_postrun.connect
def _task_finished(task_id=None, task=None, state=None, **kwargs):
    from core import celery_metrics

    celery_metrics.finished(task_id, getattr(task, "name", "?"), state or "UNKNOWN")


@signals.worker_ready.connect
def _serve_metrics(**kwargs):
    from core import celery_metrics

    celery_metrics.serve()


@signals.worker_process_shutdown.connect
def _child_gone(pid=None, **kwargs):
    from core import celery_metrics

    celery_metrics.process_gone(pid or os.getpid())


@signals.worker_process_shutdown.connect
def _flush_email_dispatch(**kwargs):
    # A pool process ends with os._exit (no atexit): publish the e-mail ids its last window holds
    # now rather than leave them to the sweep.
    from core import events

    events.flush_dispatch()

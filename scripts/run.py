"""``make run``: set up and serve this checkout, printing one line per step.

Steps: the development ``.env`` (first run), the PostgreSQL database when ``DATABASE_URL``
names one that does not exist yet, migrations, demo data, static files, then the server.
Background jobs (SLA scan, e-mail sweep): with a broker (``REDIS_URL`` or
``CELERY_BROKER_URL``) a Celery worker and beat run next to daphne under honcho
(``Procfile.run``); without one the embedded scheduler runs them inside the web process.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def step(text: str) -> None:
    sys.stdout.write(f"==> {text}\n")
    sys.stdout.flush()


def ensure_postgres_database(settings_dict: dict) -> bool:
    """Create the configured PostgreSQL database if it is missing; True when it was created."""
    import psycopg
    from psycopg import sql

    params = {
        "host": settings_dict.get("HOST") or "127.0.0.1",
        "port": settings_dict.get("PORT") or 5432,
        "user": settings_dict.get("USER") or None,
        "password": settings_dict.get("PASSWORD") or None,
    }
    name = settings_dict["NAME"]
    with psycopg.connect(dbname="postgres", autocommit=True, **{k: v for k, v in params.items() if v}) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def main() -> None:
    from config.env import load_dotenv
    from scripts.dev_dotenv import write_dev_dotenv

    host, port = os.environ.get("RUN_HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
    dotenv = Path(os.environ.get("RUN_DOTENV") or ROOT / ".env")  # tests point it elsewhere
    if write_dev_dotenv(dotenv):
        step(f"wrote {dotenv.name}: DEBUG=true, new SECRET_KEY (development only, not committed)")
    else:
        step(f"using the existing {dotenv.name}")
    load_dotenv(dotenv)  # settings read the checkout's .env; RUN_DOTENV may name another (the tests' own)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # The server runs the embedded scheduler when there is no broker (config/settings.py); this
    # set-up process must not (it would scan while migrating), so it is off until the exec.
    embedded = os.environ.get("EMBEDDED_SCHEDULER") or "true"
    os.environ["EMBEDDED_SCHEDULER"] = "false"
    os.environ.setdefault("SITE_URL", f"http://{host}:{port}")  # e-mail links lead back to this server

    import django
    from django.conf import settings
    from django.core.management import call_command

    from config.startup import or_refuse

    or_refuse(django.setup)
    database = settings.DATABASES["default"]
    if settings.IS_POSTGRES:
        step(f"database: PostgreSQL {database['NAME']} on {database.get('HOST') or '127.0.0.1'}")
        if ensure_postgres_database(database):
            step(f"created the database {database['NAME']}")
    else:
        step(f"database: SQLite {database['NAME']}")
    step("applying migrations")
    call_command("migrate", interactive=False, verbosity=0)
    step("seeding the demo organizations (seed_demo)")
    call_command("seed_demo", verbosity=0)
    step("collecting static files")
    call_command("collectstatic", interactive=False, verbosity=0)
    bin_dir = Path(sys.executable).parent
    daphne = [str(bin_dir / "daphne"), "-b", host, "-p", port, "config.asgi:application"]
    if settings.CELERY_BROKER_URL:
        call_command("setup_periodic_tasks", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
        step(f"background jobs: a Celery worker and beat on {_redacted(settings.CELERY_BROKER_URL)} (honcho)")
        command = [str(bin_dir / "honcho"), "start", "-f", str(ROOT / "Procfile.run"), "-p", port]
        os.environ.update(RUN_HOST=host, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    elif embedded.lower() in {"1", "true", "yes", "on"}:
        step("background jobs: the embedded scheduler in the web process (no broker; SLA scan, e-mail sweep)")
        command = daphne
    else:
        step("background jobs: none (no broker and EMBEDDED_SCHEDULER is off: no SLA scan, no e-mail sweep)")
        command = daphne
    os.environ["EMBEDDED_SCHEDULER"] = embedded
    step(f"serving API, admin, docs and WebSocket on http://{host}:{port} (login: alice@acme.example / Demo-Pass-2026)")
    os.execv(command[0], command)  # noqa: S606 - the server replaces this process (signals reach it directly)


def _redacted(url: str) -> str:
    """The broker URL without its password, for the start-up line."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return scheme + sep + rest


if __name__ == "__main__":
    main()

"""Set up Django for a bench script run on its own against the caller's database and Redis db."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup(name: str) -> None:
    """Production settings (DEBUG off) for bench script ``name``; exits unless DATABASE_URL and
    REDIS_URL name a database and a Redis db of the caller's own."""
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", f"{name}-bench-only-secret-key-not-for-production-0123456789")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.dummy.EmailBackend")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        sys.exit("set DATABASE_URL and REDIS_URL (a database and a Redis db of your own)")
    import django

    django.setup()


def backend_cpu_seconds(connection) -> float | None:
    """CPU time so far of ``connection``'s PostgreSQL backend (same machine only), else None."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

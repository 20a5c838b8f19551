"""Write this checkout's development ``.env`` on first ``make run``: DEBUG on and a generated SECRET_KEY.

Every ``manage.py`` command run in the checkout then works as the server does. An existing
``.env`` is left alone. ``.gitignore`` keeps the file out of git.
"""

import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_dev_dotenv(path: Path) -> bool:
    """Create ``path`` if missing; True when it was written."""
    if path.exists():
        return False
    path.write_text(
        "# Written by `make run` for development in this checkout (never commit it; .gitignore keeps it out).\n"
        "# Production sets DEBUG=false and its own SECRET_KEY and ALLOWED_HOSTS (.env.example lists everything).\n"
        "DEBUG=true\n"
        f"SECRET_KEY={secrets.token_urlsafe(64)}\n"
    )
    path.chmod(0o600)
    return True


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".env"
    if write_dev_dotenv(target):
        sys.stdout.write(f"==> wrote {target.name}: DEBUG=true, new SECRET_KEY (development only, not committed)\n")
    else:
        sys.stdout.write(f"==> using the existing {target.name}\n")

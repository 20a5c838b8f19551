"""Progress of long operator commands: a bar on a terminal, nothing otherwise, and a one-line summary.

``ProgressCommand`` adds ``--quiet`` to a management command. ``self.progress(label, total=...)``
gives a ``Progress`` that redraws one stderr line (bar when the total is known, count, rate) at most
ten times a second, and only when stderr is a terminal and ``--quiet`` is not given; a pipe, a log
file or cron get no control characters. ``self.summary(text)`` writes the closing line to stderr
(stdout may carry data, as in ``audit_export``), unless ``--quiet``.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

BAR_WIDTH = 24


class Progress:
    def __init__(self, label: str, *, total: int | None = None, unit: str = "rows", stream=None, enabled=False):
        self.label, self.total, self.unit, self.stream, self.enabled = label, total, unit, stream, enabled
        self.count = 0
        self.started = time.monotonic()
        self._drawn = 0.0

    def advance(self, n: int = 1) -> None:
        self.count += n
        if self.enabled and (now := time.monotonic()) - self._drawn >= 0.1:
            self._drawn = now
            self._draw(now)

    def set_total(self, total: int | None) -> None:
        self.total = total

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed > 0 else 0.0

    def line(self, now: float | None = None) -> str:
        """``label [#####-----] 1,234/5,000 rows 2,345/s``; without a total no bar and no /total."""
        elapsed = (now or time.monotonic()) - self.started
        rate = self.count / elapsed if elapsed > 0 else 0.0
        if self.total:
            done = min(self.count / self.total, 1.0)
            filled = int(done * BAR_WIDTH)
            bar = f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] "
            counts = f"{self.count:,}/{self.total:,}"
        else:
            bar, counts = "", f"{self.count:,}"
        return f"{self.label} {bar}{counts} {self.unit} {rate:,.0f}/s"

    def _draw(self, now: float) -> None:
        self.stream.write(f"\r\x1b[2K{self.line(now)}")
        self.stream.flush()

    def close(self) -> None:
        """Clear the bar (the summary line takes its place)."""
        if self.enabled and self._drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ProgressCommand(BaseCommand):
    """A command with ``--quiet``, a terminal progress bar and a one-line summary on stderr."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.add_argument("--quiet", action="store_true", help="No progress bar and no summary line.")
        return parser

    def execute(self, *args, **options):
        self.quiet = options.get("quiet", False)
        return super().execute(*args, **options)

    def progress(self, label: str, *, total: int | None = None, unit: str = "rows") -> Progress:
        stream = self.stderr._out
        enabled = not self.quiet and hasattr(stream, "isatty") and stream.isatty()
        return Progress(label, total=total, unit=unit, stream=stream, enabled=enabled)

    def summary(self, text: str) -> None:
        if not self.quiet:
            self.stderr.write(text)

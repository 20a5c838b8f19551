"""A circuit breaker for calls to Redis: once a call failed, skip Redis for a while.

Without it, every request meets the outage again and waits for a connect or socket timeout
(about 1 s each, issue 19.10). Closed: calls go to Redis. Open (after a failure): callers skip
Redis and take their fallback, until ``retry_seconds`` have passed; then one caller probes
while the others keep skipping, and a success closes the breaker. One breaker per process and
target: the cache (core/cache.py) and the after-commit deliveries (core/events.py).
"""

import logging
import threading
import time

logger = logging.getLogger(__name__)

_LOG_EVERY_SECONDS = 10.0


class CircuitBreaker:
    def __init__(self, retry_seconds: float, *, subject: str, fallback: str):
        self.retry_seconds = retry_seconds
        self.subject, self.fallback = subject, fallback
        self._open_until = 0.0
        self._last_logged = 0.0
        self._lock = threading.Lock()

    def allows(self) -> bool:
        if not self._open_until:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._open_until:
                return False
            self._open_until = now + self.retry_seconds  # this caller probes; the rest wait again
            return True

    def failed(self, what: str, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self._open_until = now + self.retry_seconds
            log = now - self._last_logged >= _LOG_EVERY_SECONDS
            if log:
                self._last_logged = now
        if log:  # at most every 10 s: an outage must not flood the log
            logger.error(
                "%s: Redis unavailable (%s: %s) at %s; %s, retrying in %ss",
                self.subject,
                type(exc).__name__,
                exc,
                what,
                self.fallback,
                self.retry_seconds,
            )

    def succeeded(self) -> None:
        if self._open_until:
            self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return bool(self._open_until)

"""The throttle of the authenticated API: a fixed-window counter, one cache round trip a request.

DRF's ``UserRateThrottle`` keeps a list of timestamps per user and reads then rewrites it (two
Redis round trips and a pickled list that grows with the rate). This one counts hits per user
in the current window (``INCR`` + ``EXPIRE NX`` in one pipeline on Redis): the same limit per
window, at most twice the rate across a window boundary, and ``Retry-After`` is the time left
in the window. It keeps ``UserRateThrottle``'s scope, rate setting and cache key.

Authentication counts the hit ahead (``hits_ahead``/``record_ahead``) in the round trip that
reads the auth stamps (accounts/auth_cache.py), so a request makes one Redis round trip, not
two; the throttle then only compares. A request whose hit was not counted ahead (Redis down,
another authentication, an anonymous request) is counted here as before. Counted ahead, a hit
also counts when the permission check then refuses the request.
"""

from rest_framework.throttling import UserRateThrottle

from core.cache import count_hit_portable

_AHEAD = "_window_hits_ahead"  # on the DRF request: cache key -> (window, hits)


class WindowUserRateThrottle(UserRateThrottle):
    def allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = self.timer()
        ahead = getattr(request, _AHEAD, None)
        if ahead and key in ahead:
            window, hits = ahead[key]
        else:
            window = int(now // self.duration)
            windowed, count_hit = f"{key}:{window}", getattr(self.cache, "count_hit", None)
            if count_hit is not None:
                hits = count_hit(windowed, self.duration)
            else:
                hits = count_hit_portable(self.cache, windowed, self.duration)
        self.wait_s = max((window + 1) * self.duration - now, 0)
        return hits <= self.num_requests

    def wait(self):
        return self.wait_s

    def window_key(self, ident: str, now: float) -> tuple[str, int, str]:
        """The key this throttle counts a request of user ``ident`` under: (key, window, windowed key)."""
        key = self.cache_format % {"scope": self.scope, "ident": ident}
        window = int(now // self.duration)
        return key, window, f"{key}:{window}"


def hits_ahead(request, ident: str) -> list[tuple[str, int, str, int]]:
    """The hits the view's window throttles will count for user ``ident``: (key, window, windowed
    key, ttl) each, for the caller to count in a round trip it makes anyway."""
    view = (getattr(request, "parser_context", None) or {}).get("view")
    if view is None:
        return []
    planned = []
    for throttle in view.get_throttles():
        if isinstance(throttle, WindowUserRateThrottle) and throttle.rate is not None:
            planned.append((*throttle.window_key(ident, throttle.timer()), throttle.duration))
    return planned


def record_ahead(request, planned: list[tuple[str, int, str, int]], counts: list[int]) -> None:
    """The counts of the ``planned`` hits (``hits_ahead``), for the throttles to use."""
    setattr(request, _AHEAD, {key: (window, hits) for (key, window, _w, _t), hits in zip(planned, counts, strict=True)})

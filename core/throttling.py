"""The throttle of the authenticated API: a fixed-window counter, one cache round trip a request.

DRF's ``UserRateThrottle`` keeps a list of timestamps per user and reads then rewrites it (two
Redis round trips and a pickled list that grows with the rate). This one counts hits per user
in the current window (``INCR`` + ``EXPIRE NX`` in one pipeline on Redis): the same limit per
window, at most twice the rate across a window boundary, and ``Retry-After`` is the time left
in the window. It keeps ``UserRateThrottle``'s scope, rate setting and cache key.
"""

from rest_framework.throttling import UserRateThrottle

from core.cache import count_hit_portable


class WindowUserRateThrottle(UserRateThrottle):
    def allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        self.wait_s = (window + 1) * self.duration - now
        count_hit = getattr(self.cache, "count_hit", None)
        key = f"{key}:{window}"
        hits = count_hit(key, self.duration) if count_hit else count_hit_portable(self.cache, key, self.duration)
        return hits <= self.num_requests

    def wait(self):
        return self.wait_s

"""The DRF views of the API's URLconf, for the tests that check a property of every one of them."""

from django.urls import URLPattern, URLResolver, get_resolver

from config import api_urls


def api_views() -> list[tuple[str, URLPattern, type]]:
    """``(route, pattern, view class)`` of every DRF view reachable from ``config.api_urls``.

    ``route`` is the text of the included prefixes and of the pattern's own; plain Django views
    (the JSON catch-all) are left out.
    """
    views = []

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
                continue
            cls = getattr(p.callback, "cls", None)
            if cls is not None:
                views.append((prefix + str(p.pattern), p, cls))

    walk(get_resolver(api_urls).url_patterns)
    return views

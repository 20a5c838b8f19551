"""The API's router: Django path converters instead of regexes for every ``{id}``.

``ApiRouter`` builds ``<uuid:pk>`` routes, so a malformed id never reaches a view (it does not
match: the catch-all answers the JSON 404) and views receive ``uuid.UUID`` values. A viewset whose
lookup is not a UUID names its converter (``lookup_value_converter = "slug"``).
"""

from rest_framework.routers import SimpleRouter


class ApiRouter(SimpleRouter):
    def __init__(self):
        super().__init__(use_regex_path=False)

    def get_lookup_regex(self, viewset, lookup_prefix=""):
        kwarg = getattr(viewset, "lookup_url_kwarg", None) or getattr(viewset, "lookup_field", "pk")
        converter = getattr(viewset, "lookup_value_converter", None) or "uuid"
        return f"<{converter}:{lookup_prefix}{kwarg}>"

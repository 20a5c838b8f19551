"""drf-spectacular post-processing for the OpenAPI document (SPECTACULAR_SETTINGS hooks).

``time_without_offset``: DRF's TimeField renders local wall-clock times (``"09:00:00"``, an
organization's work hours in its own timezone) while ``format: time`` means an RFC 3339
*full-time*, which requires an offset; validators (and schemathesis) reject the real values.
The hook documents them as they are: a pattern for ``HH:MM[:SS[.ffffff]]``.
"""

TIME_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?$"


def _walk(node):
    if isinstance(node, dict):
        if node.get("type") == "string" and node.get("format") == "time":
            del node["format"]
            node["pattern"] = TIME_PATTERN
            node.setdefault("example", "09:00:00")
        for value in node.values():
            _walk(value)
    elif isinstance(node, list):
        for value in node:
            _walk(value)


def time_without_offset(result, generator, request, public):
    _walk(result)
    return result

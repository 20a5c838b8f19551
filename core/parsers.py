"""JSON input with a bounded nesting depth, for every API endpoint and the WebSocket.

Python's decoder recurses once per level: 10,000 nested arrays raise ``RecursionError`` (a 500
before this parser), and a few hundred levels still reach code that walks the value recursively
(JSON Schema validation, CEL activation, the audit canonicalizer). Both are refused here as a
400 ``parse_error`` envelope, before any view code runs.
"""

from __future__ import annotations

import codecs
import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant


class TooDeep(ValueError):
    """The document nests deeper than allowed (a ValueError, as every other malformed JSON)."""


def max_depth() -> int:
    return settings.JSON_MAX_DEPTH


def check_depth(value, limit: int) -> None:
    """Raise TooDeep when containers nest more than ``limit`` levels; iterative, so never recursion-bound."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            raise TooDeep(f"JSON nested deeper than {limit} levels.")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def loads_bounded(text: str | bytes, *, limit: int | None = None, **kwargs):
    """``json.loads`` that raises ValueError (never RecursionError) for documents nested too deep."""
    limit = max_depth() if limit is None else limit
    try:
        value = json.loads(text, **kwargs)
    except RecursionError:
        raise TooDeep(f"JSON nested deeper than {limit} levels.") from None
    check_depth(value, limit)
    return value


class BoundedJSONParser(JSONParser):
    """DRF's JSONParser with the depth bound; the message says which limit was hit."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
            parse_constant = strict_constant if self.strict else None
            return loads_bounded(text, parse_constant=parse_constant)
        except TooDeep as exc:
            raise ParseError(str(exc)) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None

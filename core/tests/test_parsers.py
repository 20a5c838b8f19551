"""JSON nesting is bounded in the one parser every API endpoint uses (issue 19.7)."""

import json

import pytest
from rest_framework.parsers import JSONParser

from core.parsers import BoundedJSONParser, TooDeep, loads_bounded
from core.testing import error_code
from core.tests.api_routes import api_views


def _nested(levels: int, leaf=1) -> str:
    return "[" * levels + json.dumps(leaf) + "]" * levels


def _deep_object(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/requests/"),
        ("post", "/api/v1/requests/preview-route/"),
        ("put", "/api/v1/notifications/preferences/"),
        ("post", "/api/v1/workflows/"),
    ],
)
@pytest.mark.parametrize("body", [_nested(10_000), _deep_object(10_000), '{"data": ' + _nested(65) + "}"])
def test_deeply_nested_json_is_a_400_envelope(requester, admin_user, client_for, method, path, body):
    user = admin_user if path.startswith("/api/v1/workflows/") else requester
    response = getattr(client_for(user), method)(path, data=body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert error_code(response) == "parse_error"
    assert "nested deeper than 64 levels" in response.json()["error"]["message"]


def test_nesting_within_the_limit_parses():
    assert loads_bounded(_nested(64)) == json.loads(_nested(64))
    assert loads_bounded(_deep_object(64))["a"]["a"]
    with pytest.raises(TooDeep):
        loads_bounded(_nested(65))


def test_every_api_view_uses_the_bounded_parser():
    """A view that names its own parsers must keep the bound (plain JSONParser raises RecursionError)."""
    seen = 0
    for _, _, cls in api_views():
        seen += 1
        json_parsers = [c for c in cls.parser_classes if issubclass(c, JSONParser)]
        assert all(issubclass(c, BoundedJSONParser) for c in json_parsers), (cls, cls.parser_classes)
    assert seen > 20

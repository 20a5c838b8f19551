"""Query parameters and ids: one parser each (issues 13.5, 19.8).

Generated over the API: every list endpoint's FilterSet parameter answers a bad value with a 400
envelope naming it, and every ``{id}`` route answers a malformed id with the JSON 404.
"""

import re
from pathlib import Path

import django_filters
import pytest
from django.urls.resolvers import RoutePattern

from approvals.filters import DelegationParams
from approvals.report_filters import ReportFilter, SummaryParams
from core.filters import ChoicesInFilter, FilterBackend, InstantFilter, StrictBooleanFilter
from core.testing import api_client, error_code
from core.tests.api_routes import api_views
from core.tests.test_authz_matrix import url_routes
from notifications.filters import NotificationParams

pytestmark = pytest.mark.django_db

# Views whose parameters shape a computation rather than filter a queryset (core.filters.query_params).
PARAM_CLASSES = {
    "delegations/": DelegationParams,
    "notifications/": NotificationParams,
    "reports/summary/": SummaryParams,
    "reports/series/": ReportFilter,
}


def _bad_values(f) -> list[str]:
    if isinstance(f, StrictBooleanFilter):
        return ["maybe", "2"]
    if isinstance(f, InstantFilter):
        return ["0000-01-01", "2024-13-01T00:00:00", "2024-01-01T00:00:00+23:00", "yesterday"]
    if isinstance(f, (ChoicesInFilter, django_filters.ChoiceFilter)):
        return ["hacked", "pending,hacked"] if isinstance(f, ChoicesInFilter) else ["hacked"]
    if isinstance(f, (django_filters.UUIDFilter, django_filters.ModelChoiceFilter)):
        return ["not-a-uuid"]
    if isinstance(f, django_filters.DateFilter):
        return ["0000-01-01", "2024-13-01"]
    if isinstance(f, django_filters.NumberFilter):
        return ["1e999999", "abc"]
    max_length = f.extra.get("max_length")
    return ["x" * (max_length + 1)] if max_length else []


def _list_views():
    """(template, view class) of every GET collection route."""
    out = {}
    for route, p, cls in api_views():
        actions = getattr(p.callback, "actions", None) or {}
        if "<" in str(p.pattern):
            continue
        if actions.get("get") == "list" or (not actions and hasattr(cls, "get")):
            out[route] = cls
    return out


def _cases():
    cases = []
    for template, cls in sorted(_list_views().items()):
        filterset = PARAM_CLASSES.get(template)
        if filterset is None:
            backends = getattr(cls, "filter_backends", [])
            if not any(issubclass(b, FilterBackend) for b in backends):
                continue
            model = getattr(getattr(cls, "serializer_class", None), "Meta", None)
            model = getattr(model, "model", None) or getattr(getattr(cls, "filterset_class", None), "_meta", None)
            model = model if isinstance(model, type) else getattr(model, "model", None)
            # filterset_class, or the one the backend generates from filterset_fields.
            filterset = FilterBackend().get_filterset_class(cls(), model.objects.none()) if model else None
        if filterset is None:
            continue
        for name, f in filterset.base_filters.items():
            for value in _bad_values(f):
                cases.append(pytest.param(template, name, value, id=f"{template}?{name}={value[:20]}"))
    return cases


CASES = _cases()


def test_the_generated_cases_cover_the_endpoints_the_issue_names():
    names = {(c.values[0], c.values[1], c.values[2]) for c in CASES}
    assert ("requests/", "created_after", "0000-01-01") in names
    assert ("tasks/", "status", "hacked") in names
    assert ("reports/summary/", "since", "2024-13-01T00:00:00") in names
    templates = {c.values[0] for c in CASES}
    assert {"requests/", "tasks/", "delegations/", "notifications/", "audit-logs/", "users/", "workflows/"} <= templates
    assert {"departments/", "reports/series/", "webhooks/"} <= templates


@pytest.mark.parametrize(("template", "name", "value"), CASES)
def test_a_bad_query_parameter_is_a_400_naming_it(admin_user, template, name, value):
    response = api_client(admin_user).get(f"/api/v1/{template}", {name: value})
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert error_code(response) == "validation_error"
    assert name in response.json()["error"]["details"], response.json()


def test_no_view_reads_query_parameters_by_hand():
    """Parameters go through a FilterSet (the backend or ``query_params``), never ``request.query_params.get``."""
    root = Path(__file__).resolve().parents[2]
    allowed = {
        # ``format`` picks the export's renderer (DRF's own format override), not a filter; checked there.
        ("auditlogs/views.py", 'request.query_params.get("format", "")'),
    }
    offenders = []
    for path in sorted(root.glob("*/*views.py")):
        rel = str(path.relative_to(root))
        for line in path.read_text().splitlines():
            by_hand = "query_params.get(" in line or "query_params[" in line
            if by_hand and not any(rel == f and frag in line for f, frag in allowed):
                offenders.append((rel, line.strip()))
    assert not offenders, offenders
    for template, cls in _list_views().items():
        backends = getattr(cls, "filter_backends", [])
        declared = getattr(cls, "filterset_class", None) or getattr(cls, "filterset_fields", None)
        if declared:
            assert any(issubclass(b, FilterBackend) for b in backends) or template in PARAM_CLASSES, template


def test_every_id_in_a_route_is_a_path_converter():
    """No regex captures: ids are typed by converters, so a malformed one never reaches a view."""
    seen = []
    for _, p, _ in api_views():
        assert isinstance(p.pattern, RoutePattern), f"regex route: {p.pattern}"
        for converter, name in re.findall(r"<(?:(\w+):)?(\w+)>", str(p.pattern)):
            assert converter in {"uuid", "slug", "int"}, (str(p.pattern), name)
            seen.append(converter)
    assert seen.count("uuid") > 20


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "1", "00000000-0000-0000-0000-00000000000g", "%00", "x" * 300])
def test_a_malformed_id_is_the_json_404_on_every_route(admin_user, bad_id):
    client = api_client(admin_user)
    for method, template in sorted(url_routes()):
        if "{" not in template or template.startswith("workflows/"):  # workflows: key or id
            continue
        path = "/api/v1/" + re.sub(r"\{\w+\}", bad_id, template)
        response = getattr(client, method.lower())(path, data={}, format="json")
        assert response.status_code == 404, (method, template, response.status_code)
        assert error_code(response) == "not_found"


def test_a_malformed_workflow_key_is_the_json_404(admin_user):
    for bad in ["no such key", "ключ", "a.b"]:
        response = api_client(admin_user).get(f"/api/v1/workflows/{bad}/")
        assert response.status_code == 404 and error_code(response) == "not_found"


def test_good_values_still_filter(admin_user):
    client = api_client(admin_user)
    for path in [
        "/api/v1/requests/?created_after=2024-01-01&created_before=2024-01-02T00:00:00Z&status=pending,approved",
        "/api/v1/requests/?mine=true&overdue=false&workflow=purchase&search=x",
        "/api/v1/tasks/?status=all&overdue=1",
        "/api/v1/delegations/?direction=received",
        "/api/v1/notifications/?unread=TRUE",
        "/api/v1/reports/summary/?since=2024-01-01&until=2024-02-01T00:00:00%2B02:00",
        "/api/v1/users/?is_active=true",
        "/api/v1/workflows/?is_active=false",
    ]:
        response = client.get(path)
        assert response.status_code == 200, (path, response.content[:300])


def test_ids_and_dates_are_parsed_in_one_place():
    """``core.ids.parse_uuid`` and ``core.filters.InstantField`` only: no ``_as_uuid`` copies, no date parsers."""
    root = Path(__file__).resolve().parents[2]
    owners = {"core/ids.py", "core/filters.py"}
    offenders = []
    for path in sorted(root.glob("*/**/*.py")):
        rel = str(path.relative_to(root))
        if rel.split("/")[0] in {".venv", ".venv-fuzz", "bench", "scripts"} or "/tests/" in rel or rel in owners:
            continue
        text = path.read_text()
        for pattern in (r"uuid\.UUID\((?!hex=|int=)", r"\bparse_date(time)?\(", r"def _as_uuid"):
            offenders += [(rel, m.group(0)) for m in re.finditer(pattern, text)]
    assert not offenders, offenders

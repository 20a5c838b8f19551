"""Request data against the form at submit (issues 19.4, 19.6, 15.8): formats, bounded cost, never a 500."""

import pytest

from core.testing import api_client, error_code
from requests.models import Request
from requests.tests.factories import People, make_flow, user_step

pytestmark = pytest.mark.django_db

FORMATS = {
    "type": "object",
    "properties": {
        "start_date": {"type": "string", "format": "date"},
        "due": {"type": "string", "format": "date-time"},
        "contact": {"type": "string", "format": "email"},
        "link": {"type": "string", "format": "uri"},
        "code": {"type": "string", "pattern": "^(a+)+$"},
    },
}
GOOD = {
    "start_date": "2026-12-07",
    "due": "2026-12-07T09:30:00Z",
    "contact": "ops@example.com",
    "link": "https://example.com/po/1",
    "code": "aaa",
}


@pytest.fixture
def people(org):
    return People(org)


def _submit(people, version, data):
    return api_client(people.alice).post(
        "/api/v1/requests/",
        {"workflow": version.definition.key, "title": "T", "data": data, "submit": True},
        format="json",
    )


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("start_date", "next monday"),
        ("start_date", "2026-02-30"),
        ("due", "2026-12-07 9am"),
        ("contact", "not an address"),
        ("link", "not a uri"),
    ],
)
def test_formats_are_enforced_and_the_error_names_the_field(org, people, field, bad):
    version = make_flow(org, [user_step(1, "Manager", people.mark)], form_schema=FORMATS)
    response = _submit(people, version, {**GOOD, field: bad})
    assert response.status_code == 400, response.content
    assert error_code(response) == "validation_error"
    assert list(response.json()["error"]["details"]) == [f"data.{field}"]
    assert not Request.objects.exists()
    assert _submit(people, version, GOOD).status_code == 201


def test_catastrophic_pattern_answers_at_once(org, people):
    version = make_flow(org, [user_step(1, "Manager", people.mark)], form_schema=FORMATS)
    response = _submit(people, version, {**GOOD, "code": "a" * 40 + "!"})
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == ["data.code"]


def test_over_long_strings_are_refused_before_validation(org, people, settings):
    version = make_flow(org, [user_step(1, "Manager", people.mark)], form_schema=FORMATS)
    response = _submit(people, version, {**GOOD, "notes": {"lines": ["x" * (settings.FORM_MAX_STRING_CHARS + 1)]}})
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {
        "data.notes.lines.0": [f"At most {settings.FORM_MAX_STRING_CHARS} characters."]
    }
    assert not Request.objects.exists()


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"x": {"$ref": "#/$defs/a"}}, "$defs": {"a": {"$ref": "#/$defs/a"}}},
        {"type": "object", "properties": {"x": {"$ref": "http://127.0.0.1:9/schema.json"}}},
        {"type": "object", "properties": {"x": {"type": "string", "pattern": r"(a)\1"}}},
    ],
    ids=["cycle", "remote", "backreference"],
)
def test_a_schema_stored_before_the_checks_is_a_400_not_a_500(org, people, schema):
    """Versions saved before the save-time checks existed: refused per submit, nothing fetched or written."""
    version = make_flow(org, [user_step(1, "Manager", people.mark)], form_schema=schema)
    response = _submit(people, version, {"x": "aa"})
    assert response.status_code == 400, response.content
    assert "cannot be evaluated" in response.json()["error"]["details"]["data"][0]
    assert not Request.objects.exists()


def test_evaluation_over_its_budget_is_refused(org, people, settings):
    settings.FORM_VALIDATION_BUDGET_MS = 0
    version = make_flow(org, [user_step(1, "Manager", people.mark)], form_schema=FORMATS)
    response = _submit(people, version, GOOD)
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"data": ["The form's schema took too long to check this data."]}

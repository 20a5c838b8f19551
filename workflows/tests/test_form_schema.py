"""Form schemas are checked at save for bounded cost (issue 19.4, 19.6): RE2 patterns, local acyclic $ref."""

import threading

import pytest

from core.testing import api_client, error_code, make_user
from requests.validation import form_errors
from workflows.form_schema import schema_problems
from workflows.models import WorkflowDefinition, WorkflowVersion
from workflows.tests.factories import make_roles, purchase_spec

URL = "/api/v1/workflows/"


def _form(**properties) -> dict:
    return {"type": "object", "properties": {"amount": {"type": "number"}, "vendor": {"type": "string"}, **properties}}


def _chain(levels: int) -> dict:
    """Each definition uses the previous one twice: 2**levels subschemas from a few hundred bytes."""
    defs = {"l0": {"type": "string"}}
    for i in range(1, levels + 1):
        defs[f"l{i}"] = {"allOf": [{"$ref": f"#/$defs/l{i - 1}"}, {"$ref": f"#/$defs/l{i - 1}"}]}
    return {**_form(note={"$ref": f"#/$defs/l{levels}"}), "$defs": defs}


REFUSED = {
    "backreference": (_form(code={"type": "string", "pattern": r"^(a)\1$"}), "RE2"),
    "lookahead": (_form(code={"type": "string", "pattern": r"^(?=a)a$"}), "RE2"),
    "patternProperties lookbehind": (
        _form(extra={"type": "object", "patternProperties": {r"(?<!x)y": {"type": "string"}}}),
        "RE2",
    ),
    "remote $ref": (_form(code={"$ref": "https://example.com/schema.json"}), "remote references are never fetched"),
    "relative file $ref": (_form(code={"$ref": "other.json#/x"}), "not allowed"),
    "anchor $ref": (_form(code={"$ref": "#here"}), "not allowed"),
    "dangling $ref": (_form(code={"$ref": "#/$defs/missing"}), "points to nothing"),
    "root cycle": (_form(code={"$ref": "#"}), "reference cycle"),
    "two-step cycle": (
        {
            **_form(code={"$ref": "#/$defs/a"}),
            "$defs": {"a": {"anyOf": [{"$ref": "#/$defs/b"}]}, "b": {"$ref": "#/$defs/a"}},
        },
        "reference cycle",
    ),
    "self cycle in an unused definition": (
        {**_form(), "$defs": {"a": {"not": {"$ref": "#/$defs/a"}}}},
        "reference cycle",
    ),
    "exponential expansion": (_chain(30), "expands to more than"),
    "dynamic ref": (_form(code={"$dynamicRef": "#meta"}), "$dynamicRef"),
    "nested $id": (_form(code={"$id": "https://example.com/x", "type": "string"}), "$id"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_schema_problems_refuse_unbounded_schemas(name):
    schema, fragment = REFUSED[name]
    problems = schema_problems(schema)
    assert problems and fragment in " ".join(problems), problems


@pytest.mark.parametrize(
    "schema",
    [
        _form(code={"type": "string", "pattern": "^(a+)+$"}),  # fine on RE2: linear whatever the input
        {
            **_form(a={"$ref": "#/$defs/s"}, b={"$ref": "#/$defs/s"}),
            "$defs": {"s": {"type": "string", "format": "date"}},
        },
        _form(extra={"type": "object", "patternProperties": {"^x_[a-z]+$": {"type": "integer"}}}),
        _chain(8),
    ],
)
def test_schema_problems_accept_ordinary_schemas(schema):
    assert schema_problems(schema) == []


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_save_refuses_them_with_a_400_and_writes_nothing(org, name):
    make_roles(org)
    designer = make_user(org, roles=["workflow_designer"])
    schema, fragment = REFUSED[name]
    response = api_client(designer).post(URL, purchase_spec(form_schema=schema), format="json")
    assert response.status_code == 400, response.content
    assert error_code(response) == "validation_error"
    assert fragment in " ".join(response.json()["error"]["details"]["form_schema"])
    assert not WorkflowDefinition.all_objects.exists() and not WorkflowVersion.objects.exists()


def test_catastrophic_pattern_evaluates_in_linear_time():
    """``^(a+)+$`` against 40 a's and '!' backtracks ~2**40 steps on Python's re; RE2 answers at once."""
    schema = _form(code={"type": "string", "pattern": "^(a+)+$"})
    result = {}
    worker = threading.Thread(
        target=lambda: result.update(errors=form_errors(schema, {"code": "a" * 40 + "!"})), daemon=True
    )
    worker.start()
    worker.join(timeout=20)  # a bound on "never returns", not a speed measurement
    assert not worker.is_alive(), "form validation did not return: the pattern ran on a backtracking engine"
    assert list(result["errors"]) == ["data.code"]
    assert form_errors(schema, {"code": "a" * 5000}) == {}

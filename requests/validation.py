"""Request data against the pinned version's form schema (JSON Schema draft 2020-12).

Evaluation goes through ``workflows.form_schema``: RE2 patterns, formats enforced, local
references only, a time budget; over-long strings are refused before the schema runs.
"""

from django.conf import settings
from jsonschema.exceptions import SchemaError
from referencing.exceptions import Unresolvable

from core.exceptions import ValidationFailed
from workflows.form_schema import FormTooExpensive, FormUnusable, form_validator, reset_budget, start_budget


def _path(parts) -> str:
    return ".".join(["data", *(str(p) for p in parts)])


def _long_strings(data, limit: int) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    stack = [(data, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if len(node) > limit:
                errors.setdefault(_path(path), []).append(f"At most {limit} characters.")
        elif isinstance(node, dict):
            stack.extend((v, (*path, k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(node))
    return errors


def form_errors(schema: dict, data, *, partial: bool = False) -> dict[str, list[str]]:
    """``{"data.<field>": [messages]}``; ``partial`` (drafts) ignores missing required fields."""
    if not isinstance(data, dict):
        return {"data": ["Must be an object."]}
    too_long = _long_strings(data, settings.FORM_MAX_STRING_CHARS)
    if too_long:
        return too_long
    if not schema:
        return {}
    try:
        validator = form_validator(schema)
    except SchemaError:  # pragma: no cover - schemas are checked when a version is published
        return {}
    errors: dict[str, list[str]] = {}
    token = start_budget()
    try:
        found = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    except FormTooExpensive:
        return {"data": ["The form's schema took too long to check this data."]}
    except (Unresolvable, RecursionError, FormUnusable):
        # A version saved before these checks existed: refuse the data, never a 500 or a fetch.
        return {
            "data": [
                "The form's schema cannot be evaluated (a $ref that is remote, missing or cyclic, "
                "or a pattern RE2 cannot run); ask the workflow's designer to publish a fixed version."
            ]
        }
    finally:
        reset_budget(token)
    for error in found:
        if error.validator == "required":
            if partial:
                continue
            instance = error.instance if isinstance(error.instance, dict) else {}
            for name in error.validator_value:
                if name not in instance:
                    errors.setdefault(_path([*error.absolute_path, name]), []).append("This field is required.")
            continue
        errors.setdefault(_path(error.absolute_path), []).append(error.message)
    return errors


def validate_form(schema: dict, data, *, partial: bool = False) -> None:
    errors = form_errors(schema, data, partial=partial)
    if errors:
        raise ValidationFailed("The request data does not match the form.", details=errors)

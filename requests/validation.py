"""Request data against the pinned version's form schema (JSON Schema draft 2020-12)."""

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from core.exceptions import ValidationFailed


def _path(parts) -> str:
    return ".".join(["data", *(str(p) for p in parts)])


def form_errors(schema: dict, data, *, partial: bool = False) -> dict[str, list[str]]:
    """``{"data.<field>": [messages]}``; ``partial`` (drafts) ignores missing required fields."""
    if not isinstance(data, dict):
        return {"data": ["Must be an object."]}
    if not schema:
        return {}
    try:
        validator = Draft202012Validator(schema)
    except SchemaError:  # pragma: no cover - schemas are checked when a version is published
        return {}
    errors: dict[str, list[str]] = {}
    for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
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

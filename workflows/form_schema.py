"""Form schemas (JSON Schema draft 2020-12) with bounded cost: checked at save, evaluated safely.

A form schema is written by a workflow designer and evaluated on every submit, so a hostile or
careless schema must not be able to hang a worker or reach the network:

- ``pattern`` and ``patternProperties`` run on RE2 (linear time, no backtracking); a pattern RE2
  cannot compile (backreferences, lookaround) is refused at save.
- ``$ref`` is local only (``#`` or ``#/json/pointer``), resolvable, acyclic, and the schema
  expanded through its references stays small; remote references are never retrieved.
- Evaluation has a time budget, and request strings a length cap, checked before validation.

``schema_problems`` is the save-time check; ``form_validator`` builds the run-time validator.
"""

from __future__ import annotations

import contextvars
import time
from functools import lru_cache
from typing import Any

import re2
from django.conf import settings
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from jsonschema_specifications import REGISTRY as SPECIFICATIONS
from referencing import Registry

MAX_REFS = 100
# Schema nodes visited when every $ref is expanded in place (a chain of allOf:[ref, ref] doubles
# at each level: 30 levels are 2**30 evaluations from a 1 kB schema).
MAX_EXPANDED_NODES = 5000

# Keywords whose value is one subschema, a list of subschemas, or a name -> subschema map.
_ONE = (
    "additionalProperties",
    "items",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "additionalItems",
)
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_REFUSED_KEYWORDS = {
    "$dynamicRef": "dynamic references are not supported",
    "$recursiveRef": "recursive references are not supported",
    "$dynamicAnchor": "dynamic anchors are not supported",
    "$anchor": "anchors are not supported; use $ref with a JSON pointer (#/$defs/name)",
}


class FormTooExpensive(Exception):
    """Evaluation went over its time budget."""


class FormUnusable(Exception):
    """A stored schema cannot be evaluated safely (saved before these checks existed)."""


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 logs refused patterns to stderr itself
    return options


_RE2_OPTIONS = _options()


@lru_cache(maxsize=512)
def compile_pattern(pattern: str):
    """RE2-compiled pattern; raises ``re2.error`` for what RE2 cannot run in linear time."""
    return re2.compile(pattern, _RE2_OPTIONS)


def _pattern_error(pattern: Any) -> str | None:
    if not isinstance(pattern, str):
        return None  # check_schema reports the type
    try:
        compile_pattern(pattern)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        return (
            f"pattern {pattern!r} is not supported ({reason}): patterns run on RE2, without backreferences "
            "or lookaround, so they take linear time."
        )
    return None


def _where(path: tuple) -> str:
    return "#/" + "/".join(str(p) for p in path) if path else "#"


def _resolve(schema: Any, pointer: tuple) -> tuple[bool, Any]:
    node = schema
    for part in pointer:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def _pointer(ref: str) -> tuple | None:
    """``#/a/b`` -> ("a", "b"); ``#`` -> (); anything else (remote, anchors) -> None."""
    if ref == "#":
        return ()
    if not ref.startswith("#/"):
        return None
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/"))


class _Walk:
    def __init__(self, root: dict):
        self.root = root
        self.problems: list[str] = []
        self.refs: list[tuple[tuple, tuple]] = []  # (where the $ref is, the pointer it targets)
        self.nodes: dict[tuple, int] = {}  # schema node path -> 1 (visited)

    def schema(self, node: Any, path: tuple) -> None:
        stack = [(node, path)]
        while stack:
            node, path = stack.pop()
            if not isinstance(node, dict) or path in self.nodes:
                continue
            self.nodes[path] = 1
            for key, reason in _REFUSED_KEYWORDS.items():
                if key in node:
                    self.problems.append(f"{_where(path)}: {key}: {reason}.")
            if "$id" in node and path:
                self.problems.append(f"{_where(path)}: $id is only allowed at the root of the form schema.")
            if "pattern" in node and (problem := _pattern_error(node["pattern"])):
                self.problems.append(f"{_where(path)}: {problem}")
            if isinstance(node.get("patternProperties"), dict):
                for pattern in node["patternProperties"]:
                    if problem := _pattern_error(pattern):
                        self.problems.append(f"{_where((*path, 'patternProperties'))}: {problem}")
            if "$ref" in node:
                self.ref(node["$ref"], path)
            for key in _ONE:
                if isinstance(node.get(key), dict):
                    stack.append((node[key], (*path, key)))
            for key in _LIST:
                if isinstance(node.get(key), list):
                    stack.extend((sub, (*path, key, str(i))) for i, sub in enumerate(node[key]))
            for key in _MAP:
                if isinstance(node.get(key), dict):
                    stack.extend((sub, (*path, key, str(name))) for name, sub in node[key].items())

    def ref(self, ref: Any, path: tuple) -> None:
        if not isinstance(ref, str):
            return
        pointer = _pointer(ref)
        if pointer is None:
            self.problems.append(
                f"{_where(path)}: $ref {ref!r} is not allowed: only references inside the form schema "
                "(#/$defs/name) are; remote references are never fetched."
            )
            return
        found, _target = _resolve(self.root, pointer)
        if not found:
            self.problems.append(f"{_where(path)}: $ref {ref!r} points to nothing in the form schema.")
            return
        self.refs.append((path, pointer))


def _ref_problems(walk: _Walk) -> list[str]:
    """A reference cycle, or a schema that expands (through its references) beyond MAX_EXPANDED_NODES."""
    if len(walk.nodes) > MAX_EXPANDED_NODES:
        return [f"At most {MAX_EXPANDED_NODES} subschemas in a form schema ({len(walk.nodes)} found)."]
    if len(walk.refs) > MAX_REFS:
        return [f"At most {MAX_REFS} $ref in a form schema ({len(walk.refs)} found)."]
    # A target T leads to the target of every $ref located inside T.
    targets = sorted({t for _, t in walk.refs})
    inside = {t: [dst for src, dst in walk.refs if src[: len(t)] == t] for t in [(), *targets]}
    own_nodes = {t: sum(1 for p in walk.nodes if p[: len(t)] == t) for t in [(), *targets]}
    state: dict[tuple, int] = {}  # 1 visiting, 2 done
    size: dict[tuple, int] = {}
    limit = MAX_EXPANDED_NODES + 1

    def visit(start: tuple) -> str | None:
        # Iterative DFS (a hostile chain must not hit the recursion limit).
        stack = [(start, iter(inside[start]))]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                state[node] = 2
                size[node] = min(limit, own_nodes[node] + sum(size[c] for c in inside[node]))
                continue
            if state.get(child) == 1:
                return f"$ref {_where(child)} refers back to itself (a reference cycle)."
            if child not in state:
                state[child] = 1
                stack.append((child, iter(inside[child])))
        return None

    for start in [(), *targets]:
        if start not in state and (problem := visit(start)):
            return [problem]
    if size[()] > MAX_EXPANDED_NODES:
        return [
            f"The form schema expands to more than {MAX_EXPANDED_NODES} subschemas through its $ref; "
            "reference shared definitions less often."
        ]
    return []


def schema_problems(schema: dict) -> list[str]:
    """Save-time checks beyond the meta-schema: RE2 patterns and safe local references."""
    walk = _Walk(schema)
    walk.schema(schema, ())
    # Referenced subtrees are schemas even under keywords the walk does not know.
    for _src, pointer in list(walk.refs):
        walk.schema(_resolve(schema, pointer)[1], pointer)
    problems = walk.problems
    return problems or _ref_problems(walk)


# --- run time --------------------------------------------------------------------------------------------

_deadline: contextvars.ContextVar[float] = contextvars.ContextVar("form_deadline", default=float("inf"))


def _runtime_pattern(pattern: str):
    try:
        return compile_pattern(pattern)
    except re2.error:
        raise FormUnusable(f"pattern {pattern!r} is not supported by RE2") from None


def _re2_pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _runtime_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _re2_pattern_properties(validator, pattern_properties, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        regex = _runtime_pattern(pattern)
        for key, value in instance.items():
            if regex.search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _budgeted(keyword_fn):
    def check(validator, value, instance, schema):
        if time.monotonic() > _deadline.get():
            raise FormTooExpensive
        yield from keyword_fn(validator, value, instance, schema)

    return check


_KEYWORDS = {**Draft202012Validator.VALIDATORS, "pattern": _re2_pattern, "patternProperties": _re2_pattern_properties}
FormValidator = validators.extend(Draft202012Validator, {k: _budgeted(fn) for k, fn in _KEYWORDS.items()})
# Only the specifications' own meta-schemas: a $ref elsewhere is Unresolvable, never fetched.
_REGISTRY: Registry = SPECIFICATIONS.combine(Registry())


def form_validator(schema: dict) -> FormValidator:
    return FormValidator(
        schema,
        registry=_REGISTRY,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def start_budget() -> contextvars.Token:
    """Arm the evaluation budget (``FORM_VALIDATION_BUDGET_MS``); reset the returned token after."""
    return _deadline.set(time.monotonic() + settings.FORM_VALIDATION_BUDGET_MS / 1000)


def reset_budget(token: contextvars.Token) -> None:
    _deadline.reset(token)

"""Step conditions: CEL expressions (``cel-python``), never ``eval``.

A condition sees the request data's top-level keys as variables plus a ``requester`` map
(``requester.department``, ``requester.title``, ``requester.email``, ``requester.manager``, ``requester.id``).

- ``compile_condition`` is the save-time check (size before parsing, syntax, only known
  identifiers, then the shape bounds: AST nodes, macro nesting, list literal size).
- ``evaluate_condition`` is the run-time check with an operation budget (every AST node the
  interpreter visits, macro bodies included, counts one); compiled programs are cached per
  expression. Over budget is a ``ConditionError`` like any runtime failure, which the engine
  treats as a failed condition and audits as ``task.condition_error``.
- ``requester_context`` builds the ``requester`` map from a user.
"""

from __future__ import annotations

import operator
import re
from functools import lru_cache
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError, Evaluator, base_functions, boolean

REQUESTER = "requester"
REQUESTER_FIELDS = frozenset({"id", "email", "department", "title", "manager"})
# Macros that bind their first argument as a loop variable: items.exists(x, x > 1).
_BINDING_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
# Global functions/macros callable as f(...).
_GLOBAL_FUNCTIONS = frozenset(base_functions) | {"has", "dyn"}
_METHODS = frozenset(base_functions) | _BINDING_MACROS

# Cost bounds. Checked at save in milliseconds: the length before the parser ever runs (lark takes
# ~0.5 s on 4,000 characters), then the shape. Nested macros multiply: items.all(a, items.all(b, ...))
# over n items is n**depth evaluations, so depth is capped and evaluation has an operation budget.
MAX_CONDITION_CHARS = 1000
MAX_AST_NODES = 1000
MAX_MACRO_DEPTH = 2
MAX_LIST_LITERAL = 50
MAX_EVAL_OPERATIONS = 5_000  # about 0.2 s of cel-python; a 10 x 10 nested macro needs ~1,500


class ConditionError(Exception):
    """A condition does not compile or cannot be evaluated.

    ``position`` is the 1-based column of the offending token (CEL position), or None.
    """

    def __init__(self, message: str, *, position: int | None = None, line: int | None = None):
        self.message = message
        self.position = position
        self.line = line
        super().__init__(message)


_env = celpy.Environment()

_NUMBERS = (celtypes.IntType, celtypes.UintType, celtypes.DoubleType)


def _numeric(op):
    """Compare int and double as numbers (JSON has one number type; CEL's strict overloads would fail)."""
    strict = boolean(op)

    def compare(a, b):
        if isinstance(a, _NUMBERS) and isinstance(b, _NUMBERS) and type(a) is not type(b):
            return celtypes.BoolType(op(float(a), float(b)))
        return strict(a, b)

    return compare


_FUNCTIONS = {
    "_<_": _numeric(operator.lt),
    "_<=_": _numeric(operator.le),
    "_>_": _numeric(operator.gt),
    "_>=_": _numeric(operator.ge),
    "_==_": _numeric(operator.eq),
    "_!=_": _numeric(operator.ne),
}


def _where(line: int | None, column: int | None) -> str:
    if column is None:
        return ""
    return f" at line {line or 1}, column {column}"


@lru_cache(maxsize=1024)
def _parse(expr: str) -> lark.Tree:
    try:
        return _env.compile(expr)
    except CELParseError as exc:
        first = str(exc.args[0]).strip().splitlines()[0] if exc.args else "syntax error"
        raise ConditionError(
            f"Invalid CEL{_where(exc.line, exc.column)}: syntax error near {first.strip()!r}.",
            position=exc.column,
            line=exc.line,
        ) from None
    except Exception as exc:  # noqa: BLE001 - lark internals, recursion...
        raise ConditionError(f"Invalid CEL: {exc}.") from None


def _token_pos(tree: lark.Tree) -> tuple[int | None, int | None]:
    meta = getattr(tree, "meta", None)
    if meta is None or getattr(meta, "empty", True):
        return None, None
    return meta.line, meta.column


def _ident_name(tree: Any) -> str | None:
    """The name when ``tree`` is a bare identifier expression (possibly wrapped in trivial nodes)."""
    while isinstance(tree, lark.Tree):
        if tree.data == "ident":
            return str(tree.children[0])
        if len(tree.children) != 1:
            return None
        tree = tree.children[0]
    return None


def _check_identifiers(ast: lark.Tree, allowed_fields: frozenset[str]) -> None:
    bound: set[str] = set()
    # Loop variables of comprehension macros are allowed inside the expression.
    for node in ast.iter_subtrees():
        if node.data == "member_dot_arg" and str(node.children[1]) in _BINDING_MACROS:
            args = node.children[2] if len(node.children) > 2 else None
            if isinstance(args, lark.Tree) and args.children:
                name = _ident_name(args.children[0])
                if name:
                    bound.add(name)

    for node in ast.iter_subtrees_topdown():
        line, column = _token_pos(node)
        if node.data == "ident":
            name = str(node.children[0])
            if name == REQUESTER or name in allowed_fields or name in bound:
                continue
            known = ", ".join(sorted(allowed_fields)) or "none"
            raise ConditionError(
                f"Unknown identifier {name!r}{_where(line, column)}: a condition may use the form's "
                f"fields ({known}) and requester.*.",
                position=column,
                line=line,
            )
        if node.data == "member_dot":
            target, attr = node.children[0], str(node.children[1])
            if _ident_name(target) == REQUESTER and attr not in REQUESTER_FIELDS:
                raise ConditionError(
                    f"Unknown field requester.{attr}{_where(line, column)}: requester has "
                    f"{', '.join(sorted(REQUESTER_FIELDS))}.",
                    position=column,
                    line=line,
                )
        if node.data == "ident_arg":
            name = str(node.children[0])
            if name not in _GLOBAL_FUNCTIONS:
                raise ConditionError(f"Unknown function {name}(){_where(line, column)}.", position=column, line=line)
        if node.data == "member_dot_arg":
            name = str(node.children[1])
            if name not in _METHODS:
                raise ConditionError(f"Unknown method .{name}(){_where(line, column)}.", position=column, line=line)


def _check_shape(ast: lark.Tree) -> None:
    """Bound the work one evaluation can do: node count, macro nesting, list literal size."""
    nodes = 0
    stack = [(ast, 0)]  # (node, macros enclosing it)
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_AST_NODES:
            raise ConditionError(f"Condition too complex: more than {MAX_AST_NODES} syntax nodes.")
        line, column = _token_pos(node)
        if node.data == "member_dot_arg" and str(node.children[1]) in _BINDING_MACROS:
            depth += 1
            if depth > MAX_MACRO_DEPTH:
                raise ConditionError(
                    f"Condition too complex{_where(line, column)}: macros (all, exists, map, filter...) "
                    f"nest at most {MAX_MACRO_DEPTH} deep.",
                    position=column,
                    line=line,
                )
        if node.data in ("list_lit", "map_lit") and node.children and isinstance(node.children[0], lark.Tree):
            size = len(node.children[0].children) // (2 if node.data == "map_lit" else 1)
            if size > MAX_LIST_LITERAL:
                raise ConditionError(
                    f"Condition too complex{_where(line, column)}: a literal has {size} items "
                    f"(at most {MAX_LIST_LITERAL}).",
                    position=column,
                    line=line,
                )
        stack.extend((child, depth) for child in node.children if isinstance(child, lark.Tree))


def compile_condition(expr: str, *, allowed_fields: set[str]) -> None:
    """Raise ConditionError unless ``expr`` is valid CEL over ``allowed_fields`` and ``requester``."""
    if not (expr or "").strip():
        return
    if len(expr) > MAX_CONDITION_CHARS:
        raise ConditionError(f"Condition too long: at most {MAX_CONDITION_CHARS} characters.")
    ast = _parse(expr)
    _check_shape(ast)
    _check_identifiers(ast, frozenset(allowed_fields))
    try:
        _program(expr)
    except ConditionError:
        raise
    except Exception as exc:  # noqa: BLE001  # pragma: no cover - defensive
        raise ConditionError(f"Invalid CEL: {exc}.") from None


class _OverBudget(Exception):
    pass


class _Budget:
    __slots__ = ("left",)

    def __init__(self, operations: int):
        self.left = operations


class _BudgetEvaluator(Evaluator):
    """celpy's interpreter counting every node it visits, macro bodies (sub-evaluators) included."""

    def __init__(self, ast, activation, budget: _Budget):
        super().__init__(ast, activation=activation)
        self.budget = budget

    def _visit_tree(self, tree):
        self.budget.left -= 1
        if self.budget.left < 0:
            raise _OverBudget
        return super()._visit_tree(tree)

    def sub_evaluator(self, ast):
        return _BudgetEvaluator(ast, self.activation, self.budget)


class _BudgetRunner(celpy.InterpretedRunner):
    def evaluate(self, context, *, operations: int = MAX_EVAL_OPERATIONS):
        return _BudgetEvaluator(self.ast, self.new_activation(), _Budget(operations)).evaluate(context)


@lru_cache(maxsize=1024)
def _program(expr: str) -> _BudgetRunner:
    if len(expr) > MAX_CONDITION_CHARS:  # stored before the bound: never parse it at run time
        raise ConditionError(f"Condition too long: at most {MAX_CONDITION_CHARS} characters.")
    ast = _parse(expr)
    _check_shape(ast)
    return _BudgetRunner(_env, ast, _FUNCTIONS)


def evaluate_condition(expr: str, *, data: dict, requester: dict) -> bool:
    """Evaluate a condition. Empty means True. Any runtime problem raises ConditionError."""
    if not (expr or "").strip():
        return True
    program = _program(expr)
    activation = {str(k): json_to_cel(v) for k, v in (data or {}).items()}
    activation[REQUESTER] = json_to_cel(dict(requester or {}))
    try:
        result = program.evaluate(activation)
    except _OverBudget:
        raise ConditionError(
            f"Condition failed: it needed more than {MAX_EVAL_OPERATIONS} operations on this data."
        ) from None
    except CELEvalError as exc:
        raise _runtime_error(exc) from None
    except Exception as exc:  # noqa: BLE001 - any library error is a failed condition for the engine
        raise ConditionError(f"Condition failed: {_short(str(exc))}.") from None
    if isinstance(result, CELEvalError):
        raise _runtime_error(result)
    if not isinstance(result, (celtypes.BoolType, bool)):
        raise ConditionError(f"Condition must be true or false, got {type(result).__name__}.")
    return bool(result)


def _short(text: str) -> str:
    return text if len(text) <= 160 else text[:157] + "..."


def _runtime_error(exc: CELEvalError) -> ConditionError:
    text = str(exc.args[0]) if exc.args else str(exc)
    missing = re.search(r"undeclared reference to '([^']+)'", text)
    if missing:
        text = f"no value for {missing.group(1)!r}"
    elif "no such key" in text or isinstance(exc.__cause__, KeyError):
        text = f"missing key ({_short(text)})"
    else:
        text = _short(text)
    return ConditionError(
        f"Condition failed{_where(exc.line, exc.column)}: {text}.", position=exc.column, line=exc.line
    )


def requester_context(user) -> dict:
    """The ``requester`` map conditions see."""
    department = getattr(user, "department", None)
    manager = getattr(user, "manager", None)
    return {
        "id": str(user.pk) if getattr(user, "pk", None) else "",
        "email": getattr(user, "email", "") or "",
        "department": getattr(department, "name", "") if department else "",
        "title": getattr(user, "title", "") or "",
        "manager": getattr(manager, "email", "") if manager else "",
    }

"""schemathesis hooks for scripts/fuzz.sh: hostile values mixed into the generated cases.

Loaded by schemathesis in its own venv (SCHEMATHESIS_HOOKS), never imported by the project.
Two thirds of the bodies, query strings and path ids the fuzzing phase generates get one value
replaced by a hostile one (or the whole body nested deep): what the schema allows is fuzzed by schemathesis,
what an attacker sends regardless is fuzzed here. Every answer must still be a 4xx/2xx envelope
within the response-time budget (--max-response-time).
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import strategies as st

# Deeper than the API's JSON_MAX_DEPTH (64); the client's own encoder recurses, so not 10,000 (the
# unit tests send those as raw bytes: core/tests/test_parsers.py).
DEEP = 200

HUGE_NUMBERS = [2**63, -(2**63) - 1, 2**64, 10**30, -(10**30), 10**400, 1e308, -1e308, 5e-324]
NEGATIVE = [-1, -(2**31), -(2**63)]
DATES = [
    "0000-01-01",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00-23:59",
    "9999-12-31T23:59:59+23:59",
    "2024-13-01T00:00:00",
    "2024-02-30",
    "-0001-01-01",
]
LONG = ["a" * 100_000, "\u00e9" * 20_000, "(" * 5_000]
ODD_STRINGS = ["\x00", "a\x00b", "\U0010ffff", "' OR 1=1 --", "../../etc/passwd", " ", ""]
QUERY_VALUES = [
    *DATES,
    "-1",
    "9" * 40,
    "1e999999",
    "NaN",
    "hacked",
    "true,false",
    "a" * 3_000,
    "%00",
    "\x00",
]
PATH_IDS = ["-1", "0", "9" * 40, "00000000-0000-0000-0000-00000000000g", "a" * 300, "..", "%00"]


def _mark(kind: str):
    """Record each hostile case generated (FUZZ_HOSTILE_LOG): the test checks they were sent."""
    path = os.environ.get("FUZZ_HOSTILE_LOG")

    def mark(value):
        if path:
            with open(path, "a") as log:
                log.write(kind + "\n")
        return value

    return mark


def _nested(depth: int):
    value: object = 1
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


LEAVES = st.sampled_from([*HUGE_NUMBERS, *NEGATIVE, *DATES, *LONG, *ODD_STRINGS, _nested(DEEP)])


def _replace_one(container: dict, value_strategy) -> st.SearchStrategy:
    keys = sorted(container, key=str)
    if not keys:
        return st.just(container)
    return st.tuples(st.sampled_from(keys), value_strategy).map(lambda kv: {**container, kv[0]: kv[1]})


def _mostly_hostile(value, hostile: st.SearchStrategy, kind: str) -> st.SearchStrategy:
    """``value`` as generated one time in three, a hostile variant (logged as ``kind``) the other two."""
    marked = hostile.map(_mark(kind))
    return st.one_of(st.just(value), marked, marked)


def _one_entry_hostile(values: dict, pool: list, kind: str) -> st.SearchStrategy:
    if not values:
        return st.just(values)
    return _mostly_hostile(values, _replace_one(values, st.sampled_from(pool)), kind)


@schemathesis.hook
def flatmap_body(context, body):
    hostile = [st.just(_nested(DEEP))]
    if isinstance(body, dict):
        hostile.append(_replace_one(body, LEAVES))
        # One level down as well: request data, preferences, steps' fields.
        nested = [k for k, v in body.items() if isinstance(v, dict) and v]
        if nested:
            hostile.append(
                st.sampled_from(sorted(nested, key=str)).flatmap(
                    lambda k: _replace_one(body[k], LEAVES).map(lambda inner: {**body, k: inner})
                )
            )
    return _mostly_hostile(body, st.one_of(*hostile), "body")


@schemathesis.hook
def flatmap_query(context, query):
    return _one_entry_hostile(query, QUERY_VALUES, "query")


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    return _one_entry_hostile(path_parameters, PATH_IDS, "path")

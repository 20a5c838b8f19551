import pytest

from workflows.conditions import ConditionError, compile_condition, evaluate_condition, requester_context

FIELDS = {"amount", "vendor", "items"}
REQ = {"id": "1", "email": "a@x.test", "department": "Engineering", "title": "Engineer", "manager": ""}


@pytest.mark.parametrize(
    "expr",
    [
        "amount > 5000",
        'amount > 5000 && requester.department == "Engineering"',
        "items.exists(x, x > 2)",
        'vendor.startsWith("A") || size(vendor) > 10',
        "has(requester.title)",
    ],
)
def test_valid_conditions_compile(expr):
    compile_condition(expr, allowed_fields=FIELDS)


@pytest.mark.parametrize(
    ("expr", "position", "fragment"),
    [
        ("amount >", 8, "syntax"),
        ("amount > 5000 && foo", 18, "Unknown identifier 'foo'"),
        ("requester.salary > 1", 1, "requester.salary"),
        ("frob(amount)", 1, "Unknown function frob"),
    ],
)
def test_invalid_conditions_say_where(expr, position, fragment):
    with pytest.raises(ConditionError) as info:
        compile_condition(expr, allowed_fields=FIELDS)
    assert info.value.position == position
    assert fragment in info.value.message
    assert f"column {position}" in info.value.message


def test_evaluate_mixes_int_and_double():
    assert evaluate_condition("amount > 5000", data={"amount": 6000.5}, requester=REQ) is True
    assert evaluate_condition("amount > 5000.5", data={"amount": 6000}, requester=REQ) is True
    assert evaluate_condition("amount == 5000", data={"amount": 5000.0}, requester=REQ) is True
    assert evaluate_condition("amount > 10000", data={"amount": 6000}, requester=REQ) is False
    assert evaluate_condition("", data={}, requester=REQ) is True
    assert evaluate_condition('requester.department == "Engineering"', data={}, requester=REQ) is True


def test_evaluate_runtime_errors_raise():
    with pytest.raises(ConditionError, match="no value for 'amount'"):
        evaluate_condition("amount > 5000", data={}, requester=REQ)
    with pytest.raises(ConditionError, match="true or false"):
        evaluate_condition("amount", data={"amount": 3}, requester=REQ)


def test_requester_context(org):
    from core.testing import make_department, make_user

    boss = make_user(org, "boss@x.test")
    dept = make_department(org, "Engineering")
    user = make_user(org, "emp@x.test", department=dept, manager=boss, title="Engineer")
    ctx = requester_context(user)
    assert ctx == {
        "id": str(user.pk),
        "email": "emp@x.test",
        "department": "Engineering",
        "title": "Engineer",
        "manager": "boss@x.test",
    }


# --- cost bounds (issue 19.5) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("items.all(a, items.all(b, items.all(c, a + b + c >= 0)))", "nest at most 2 deep"),
        ("items.exists(a, items.map(b, items.filter(c, c > a)).size() > 0)", "nest at most 2 deep"),
        ("amount in [" + ", ".join(str(i) for i in range(60)) + "]", "a literal has 60 items"),
        ("{" + ", ".join(f'"k{i}": {i}' for i in range(60)) + "}.size() > 0", "a literal has 60 items"),
        ("||".join(["-items"] * 120), "more than 1000 syntax nodes"),
        ("amount > 1 || " * 5000 + "true", "at most 1000 characters"),
        ("(" * 100_000, "at most 1000 characters"),
    ],
    ids=["macro-depth-3", "mixed-macros-depth-3", "list-literal", "map-literal", "ast-nodes", "long", "long-garbage"],
)
def test_conditions_over_the_cost_bounds_are_refused_at_save(expr, fragment):
    with pytest.raises(ConditionError) as info:
        compile_condition(expr, allowed_fields=FIELDS)
    assert fragment in info.value.message


def test_conditions_within_the_bounds_compile():
    compile_condition("items.all(a, items.exists(b, a + b > 2))", allowed_fields=FIELDS)
    compile_condition("amount in [" + ", ".join(str(i) for i in range(50)) + "]", allowed_fields=FIELDS)


def test_evaluation_over_its_operation_budget_fails_the_condition():
    """Two nested macros over 1,000 items are 10**6 evaluations (minutes in cel-python): stopped at the budget."""
    expr = "items.all(a, items.all(b, a + b >= 0))"
    assert evaluate_condition(expr, data={"items": list(range(10))}, requester=REQ) is True
    with pytest.raises(ConditionError, match="more than 5000 operations"):
        evaluate_condition(expr, data={"items": list(range(1000))}, requester=REQ)
    # The budget is per evaluation: the next one starts afresh.
    assert evaluate_condition(expr, data={"items": list(range(10))}, requester=REQ) is True


def test_matches_runs_on_a_linear_time_engine():
    assert evaluate_condition('vendor.matches("^(a+)+$")', data={"vendor": "a" * 40 + "!"}, requester=REQ) is False

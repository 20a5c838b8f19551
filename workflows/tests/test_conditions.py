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

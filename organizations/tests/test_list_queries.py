"""Statements of departments/ and holidays/ do not grow with the rows listed (1 row, then 10)."""

from datetime import date, timedelta

import pytest

from core.testing import api_client, make_department
from organizations.services import holiday_create

pytestmark = pytest.mark.django_db

# The caller (JWT: the user with organization, department and roles), count, page; a holiday
# changes the organization's calendar, which revokes every copy of its users (accounts/auth_cache.py).
HOLIDAYS = 3
# Count, page; the caller from the process's copy (warmed first).
DEPARTMENTS = 2


def listed(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_departments_list(admin_user, org, django_assert_num_queries):
    parent = make_department(org, "Dept 0", head=admin_user)
    client = api_client(admin_user)
    assert client.get("/api/v1/auth/me/").status_code == 200  # the caller cached from here on
    with django_assert_num_queries(DEPARTMENTS):
        assert len(listed(client, "/api/v1/departments/")) == 1
    for i in range(1, 10):  # each with a parent and a head: no query per row for either
        make_department(org, f"Dept {i}", parent=parent, head=admin_user)
    with django_assert_num_queries(DEPARTMENTS):
        assert len(listed(client, "/api/v1/departments/")) == 10


def test_holidays_list(admin_user, org, django_assert_num_queries):
    first = date(2030, 1, 1)
    holiday_create(actor=admin_user, organization=org, date=first, name="Holiday 0")
    client = api_client(admin_user)
    with django_assert_num_queries(HOLIDAYS):
        assert len(listed(client, "/api/v1/holidays/")) == 1
    for i in range(1, 10):
        holiday_create(actor=admin_user, organization=org, date=first + timedelta(days=i), name=f"Holiday {i}")
    with django_assert_num_queries(HOLIDAYS):
        assert len(listed(client, "/api/v1/holidays/")) == 10

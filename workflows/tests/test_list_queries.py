"""Statements of workflows/{key}/versions/ do not grow with the versions listed (1, then 10)."""

import pytest

from core.testing import api_client, make_user
from workflows import services
from workflows.tests.factories import make_workflow

pytestmark = pytest.mark.django_db

# (The caller from the process's copy, warmed first: accounts/auth_cache.py.) The workflow by key, the
# workflow again through the viewset's visibility-filtered queryset with its current versions and
# their steps (prefetched for the detail, unused here: 3 statements this action could do without),
# count, page (versions with who published them), their steps (prefetched).
VERSIONS = 7


def test_versions_list(org, django_assert_num_queries):
    designer = make_user(org, "designer@acme-test.test", roles=["workflow_designer"])
    definition = make_workflow(org, actor=designer)
    client = api_client(designer)
    assert client.get("/api/v1/auth/me/").status_code == 200  # the caller cached from here on
    url = f"/api/v1/workflows/{definition.key}/versions/"

    def listed():
        response = client.get(url)
        assert response.status_code == 200, response.content
        return response.json()["results"]

    with django_assert_num_queries(VERSIONS):
        assert len(listed()) == 1
    for _ in range(9):  # each one published, which retires the one before: every version has its steps
        draft = services.draft_from_version(actor=designer, version=definition.versions.order_by("-number")[0])
        services.version_publish(actor=designer, version=draft)
    with django_assert_num_queries(VERSIONS):
        rows = listed()
    assert len(rows) == 10 and all(row["steps"] for row in rows)

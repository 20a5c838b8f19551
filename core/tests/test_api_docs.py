"""The API docs render in a browser with no request leaving the server (no CDN, no web fonts, no validator)."""

import pytest

from core.tests.browser import chromium_page, needs_chromium

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/api/docs/", ".opblock-summary-path[data-path='/api/v1/auth/login/']"),  # Swagger UI
        ("/api/redoc/", "[data-section-id^='operation/']"),  # ReDoc
    ],
)
def test_docs_render_operations_from_the_server_alone(live_server, path, operation):
    outside = []
    with chromium_page(f"api-docs-{path.strip('/').replace('/', '-')}", full_page=False) as page:

        def only_this_server(route):
            if route.request.url.startswith(live_server.url):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", only_this_server)
        page.goto(f"{live_server.url}{path}")
        page.wait_for_selector(operation)
        assert page.locator(operation).count() >= 1
        assert "/api/v1/tasks/{id}/approve/" in page.content()
    assert outside == []

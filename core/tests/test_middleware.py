"""Over-long URLs and headers answer the envelope (issue 19.8), in-process and through gunicorn."""

import socket
from urllib.parse import urlsplit

import pytest

from core.testing import error_code
from core.tests.servers import production_servers


@pytest.mark.django_db
def test_over_long_url_is_a_414_envelope(client, settings):
    response = client.get("/api/v1/requests/?search=" + "x" * settings.REQUEST_MAX_URL_CHARS)
    assert response.status_code == 414
    assert error_code(response) == "uri_too_long"


@pytest.mark.django_db
def test_over_long_or_too_many_headers_are_a_431_envelope(client, settings):
    big = client.get("/api/v1/auth/me/", HTTP_X_PADDING="y" * settings.REQUEST_MAX_HEADER_BYTES)
    assert big.status_code == 431 and error_code(big) == "headers_too_large"
    many = client.get("/api/v1/auth/me/", **{f"HTTP_X_H{i}": "1" for i in range(settings.REQUEST_MAX_HEADERS + 1)})
    assert many.status_code == 431 and error_code(many) == "headers_too_large"
    assert client.get("/api/v1/auth/me/", HTTP_X_PADDING="y" * 1000).status_code == 401


def _raw(base: str, request: bytes) -> tuple[int, bytes, bytes]:
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), head, body


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_gunicorn_lets_the_app_answer_over_long_urls_and_headers():
    """gunicorn's defaults (4,094-byte request line, 8,190-byte header) answered its own HTML page."""
    with production_servers(web=1, ws=0) as servers:
        base = servers["web"][0]
        status, head, body = _raw(
            base, b"GET /api/v1/requests/?q=" + b"a" * 6000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert status == 414 and b"application/json" in head, head
        assert b'"uri_too_long"' in body
        status, head, body = _raw(
            base,
            b"GET /api/v1/auth/me/ HTTP/1.1\r\nHost: x\r\nX-Padding: "
            + b"b" * 12000
            + b"\r\nConnection: close\r\n\r\n",
        )
        assert status == 431 and b"application/json" in head, head
        assert b'"headers_too_large"' in body

"""Bearer authentication (accounts/authentication.py): the per-process memory of verified tokens.

A token string verified once is taken again without recomputing its signature, until it
expires; anything else about it (revocation, the user's state) is checked on every request.
"""

import time

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from accounts.authentication import ActiveUserJWTAuthentication
from core.testing import error_code

pytestmark = pytest.mark.django_db

ME = "/api/v1/auth/me/"


def bearer(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def decodes(monkeypatch):
    """How many times the JWT library decoded (and so verified) a token."""
    calls = []
    original = TokenBackend.decode
    monkeypatch.setattr(TokenBackend, "decode", lambda self, *a, **kw: calls.append(1) or original(self, *a, **kw))
    return calls


def test_a_token_is_verified_once_per_process(requester, decodes):
    client = bearer(RefreshToken.for_user(requester).access_token)
    for _ in range(3):
        assert client.get(ME).status_code == 200
    assert len(decodes) == 1


def test_each_request_gets_its_own_token_object(requester):
    raw = str(RefreshToken.for_user(requester).access_token).encode()
    auth = ActiveUserJWTAuthentication()
    first, second = auth.get_validated_token(raw), auth.get_validated_token(raw)
    assert first is not second and first.payload is not second.payload
    assert first.payload == second.payload
    first.payload["user_id"] = "someone else"
    assert auth.get_validated_token(raw)["user_id"] == str(requester.pk)


def test_a_remembered_token_is_refused_once_it_expires(requester):
    token = RefreshToken.for_user(requester).access_token
    token["exp"] = int(time.time()) + 2  # the claim has whole seconds
    client = bearer(token)
    assert client.get(ME).status_code == 200
    time.sleep(token["exp"] - time.time() + 0.05)
    response = client.get(ME)
    assert response.status_code == 401 and error_code(response) == "authentication_failed"
    # simplejwt's own answer, as without the memory
    assert response.json()["error"]["message"] == "Given token not valid for any token type"


def test_an_altered_token_is_refused_though_the_original_is_remembered(requester):
    token = str(RefreshToken.for_user(requester).access_token)
    assert bearer(token).get(ME).status_code == 200
    head, payload, signature = token.split(".")
    altered = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    response = bearer(altered).get(ME)
    assert response.status_code == 401 and error_code(response) == "authentication_failed"
    assert response.json()["error"]["message"] == "Given token not valid for any token type"


def test_a_remembered_token_is_refused_once_revoked(requester):
    client = bearer(RefreshToken.for_user(requester).access_token)
    assert client.get(ME).status_code == 200
    services.password_set(actor=None, user=requester, new_password="Another-Pass-2026!")
    response = client.get(ME)
    assert response.status_code == 401 and error_code(response) == "authentication_failed"
    assert response.json()["error"]["message"] == "Token has been revoked."

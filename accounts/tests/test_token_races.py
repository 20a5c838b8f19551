"""Refresh-token rotation under concurrency, and refreshes that must die.

Real threads, each with its own PostgreSQL connection (``transactional_db``): the
service locks the OutstandingToken row, so of N racing refreshes of one token exactly
one wins and every other gets the 401 envelope.
"""

import threading

import pytest
from django.db import connection
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from core.testing import PASSWORD, api_client, error_code, make_org, make_user, race

LOGIN = "/api/v1/auth/login/"
REFRESH = "/api/v1/auth/refresh/"
N = 10


def _login(user) -> dict:
    response = api_client().post(LOGIN, {"email": user.email, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _race(refresh: str, n: int = N) -> list:
    def refresh_once(_i):
        response = api_client().post(REFRESH, {"refresh": refresh}, format="json")
        return (response.status_code, response.json())

    return race(refresh_once, n)


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_of_one_token_exactly_one_wins():
    org = make_org("race-org")
    user = make_user(org, "racer@race.test")
    tokens = _login(user)
    before = OutstandingToken.objects.filter(user=user).count()

    results = _race(tokens["refresh"])

    statuses = sorted(r[0] for r in results)
    assert statuses == [200] + [401] * (N - 1), results
    for status, body in results:
        if status == 401:
            assert body["error"]["code"] == "token_not_valid", body
    winner = next(body for status, body in results if status == 200)
    # Exactly one new pair was issued, and the presented token is blacklisted once.
    assert OutstandingToken.objects.filter(user=user).count() == before + 1
    jti = RefreshToken(winner["refresh"])["jti"]
    assert OutstandingToken.objects.filter(jti=jti, blacklistedtoken__isnull=True).exists()
    old = OutstandingToken.objects.get(token=tokens["refresh"])
    assert BlacklistedToken.objects.filter(token=old).count() == 1
    # The winner's refresh works; the raced one stays dead.
    assert api_client().post(REFRESH, {"refresh": winner["refresh"]}, format="json").status_code == 200
    assert api_client().post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_concurrent_service_calls_serialize_on_the_row():
    """The same race one level down: the service itself, no HTTP in between."""
    org = make_org("race-org2")
    user = make_user(org, "racer2@race.test")
    refresh = str(RefreshToken.for_user(user))
    barrier = threading.Barrier(N)
    outcomes: list = []
    lock = threading.Lock()

    def worker():
        try:
            barrier.wait(timeout=10)
            services.refresh_tokens(refresh=refresh)
            result = "ok"
        except Exception as exc:
            result = type(exc).__name__
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker) for _ in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["NotAuthenticated"] * (N - 1) + ["ok"], outcomes


@pytest.mark.django_db
def test_refresh_of_deactivated_user_fails(org, admin_user):
    user = make_user(org, "leaver@acme-test.test")
    tokens = _login(user)
    services.user_deactivate(actor=admin_user, user=user)
    response = api_client().post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert response.status_code == 401
    assert error_code(response) in {"token_not_valid", "user_inactive"}


@pytest.mark.django_db
def test_refresh_of_inactive_user_whose_tokens_were_not_revoked_fails(org):
    """Deactivated behind the service's back (e.g. a raw update): the user check still refuses."""
    user = make_user(org, "ghost@acme-test.test")
    tokens = _login(user)
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    response = api_client().post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert response.status_code == 401
    assert error_code(response) == "user_inactive"
    # The refused token is not left alive for a later reactivation either.
    type(user).objects.filter(pk=user.pk).update(is_active=True)
    again = api_client().post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert again.status_code == 401, again.content


@pytest.mark.django_db
def test_logout_then_refresh_fails(requester):
    tokens = _login(requester)
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert client.post("/api/v1/auth/logout/", {"refresh": tokens["refresh"]}, format="json").status_code == 204
    response = api_client().post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert response.status_code == 401
    assert error_code(response) == "token_not_valid"
    # A second logout of the same token is refused too (nothing to kill twice).
    assert client.post("/api/v1/auth/logout/", {"refresh": tokens["refresh"]}, format="json").status_code == 401


@pytest.mark.django_db
def test_access_token_is_not_accepted_as_refresh(requester):
    tokens = _login(requester)
    response = api_client().post(REFRESH, {"refresh": tokens["access"]}, format="json")
    assert response.status_code == 401
    assert error_code(response) == "token_not_valid"


@pytest.mark.django_db
def test_forged_refresh_is_refused(requester):
    tokens = _login(requester)
    header, payload, signature = tokens["refresh"].split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    response = api_client().post(REFRESH, {"refresh": forged}, format="json")
    assert response.status_code == 401

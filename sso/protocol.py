"""The OpenID Connect relying party: discovery, the authorization URL (PKCE), the code exchange and
ID token verification against the provider's JWKS. No database; errors as ``ApplicationError``.

httpx for the HTTP calls (never the PyPI ``requests``: our app of that name shadows it) and PyJWT
for the signatures. Discovery documents and key sets are cached for ``OIDC_METADATA_CACHE_SECONDS``;
an ID token signed with a key not in the cached set fetches the set once more (key rotation).
"""

import base64
import hashlib
import hmac
import secrets
from urllib.parse import urlencode

import httpx
import jwt
from django.conf import settings
from django.core.cache import cache

from core.exceptions import ApplicationError, NotAuthenticated

# Asymmetric algorithms only: an HS256 token would be "signed" with the client secret we share.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
MAX_DOCUMENT_BYTES = 256 * 1024


class ProviderUnavailable(ApplicationError):
    status_code = 502
    code = "oidc_provider_unavailable"
    default_message = "The identity provider could not be reached or answered wrongly."


class TokenRejected(NotAuthenticated):
    """The provider's answer does not prove who signs in (signature, issuer, audience, nonce...)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message, code="oidc_token_invalid")
        self.reason = reason


def _get_json(url: str, **kwargs) -> dict:
    try:
        response = httpx.request(kwargs.pop("method", "GET"), url, timeout=settings.OIDC_HTTP_TIMEOUT, **kwargs)
    except httpx.HTTPError:
        raise ProviderUnavailable() from None
    if len(response.content) > MAX_DOCUMENT_BYTES:
        raise ProviderUnavailable()
    try:
        body = response.json()
    except ValueError:
        raise ProviderUnavailable() from None
    if not isinstance(body, dict):
        raise ProviderUnavailable()
    if response.status_code >= 400:
        error = str(body.get("error", ""))[:100]
        raise TokenRejected(f"The identity provider refused the code: {error or response.status_code}.", "code_refused")
    return body


def discovery(issuer: str) -> dict:
    key = "oidc:discovery:" + hashlib.sha256(issuer.encode()).hexdigest()
    document = cache.get(key)
    if document is None:
        document = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
        # OIDC Discovery 4.3: the document's issuer is exactly the one configured.
        if document.get("issuer") != issuer or not all(
            isinstance(document.get(name), str) for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
        ):
            raise ProviderUnavailable("The identity provider's discovery document does not match its issuer.")
        cache.set(key, document, settings.OIDC_METADATA_CACHE_SECONDS)
    return document


def _jwks(uri: str, *, fresh: bool = False) -> dict:
    key = "oidc:jwks:" + hashlib.sha256(uri.encode()).hexdigest()
    keys = None if fresh else cache.get(key)
    if keys is None:
        keys = _get_json(uri)
        cache.set(key, keys, settings.OIDC_METADATA_CACHE_SECONDS)
    return keys


def random_token() -> str:
    return secrets.token_urlsafe(32)


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def authorization_url(
    *, issuer: str, client_id: str, redirect_uri: str, state: str, nonce: str, code_verifier: str
) -> str:
    endpoint = discovery(issuer)["authorization_endpoint"]
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid email profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce_challenge(code_verifier),
            "code_challenge_method": "S256",
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def exchange_code(
    *, issuer: str, client_id: str, client_secret: str, code: str, redirect_uri: str, code_verifier: str
) -> str:
    """The ID token the provider gives for ``code`` (client_secret_post, the PKCE verifier)."""
    tokens = _get_json(
        discovery(issuer)["token_endpoint"],
        method="POST",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "client_secret": client_secret,
            "code_verifier": code_verifier,
        },
        headers={"Accept": "application/json"},
    )
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise TokenRejected("The identity provider returned no ID token.", "no_id_token")
    return id_token


def _signing_key(jwks_uri: str, kid: str | None):
    for fresh in (False, True):
        try:
            keys = jwt.PyJWKSet.from_dict(_jwks(jwks_uri, fresh=fresh)).keys
        except jwt.PyJWTError:
            raise ProviderUnavailable("The identity provider's key set is unusable.") from None
        matching = [k for k in keys if kid is None or k.key_id == kid]
        if matching:
            return matching[0]
    raise TokenRejected("The ID token is signed with an unknown key.", "unknown_key")


def verify_id_token(*, id_token: str, issuer: str, client_id: str, nonce: str) -> dict:
    """The ID token's claims once its signature, issuer, audience, times and nonce hold."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise TokenRejected("The ID token is malformed.", "malformed") from None
    if header.get("alg") not in ALGORITHMS:
        raise TokenRejected("The ID token's signature algorithm is not accepted.", "algorithm")
    key = _signing_key(discovery(issuer)["jwks_uri"], header.get("kid"))
    try:
        claims = jwt.decode(
            id_token,
            key=key,
            algorithms=[header["alg"]],
            audience=client_id,
            issuer=issuer,
            leeway=settings.OIDC_CLOCK_SKEW_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.InvalidAudienceError:
        raise TokenRejected("The ID token was not issued to this application.", "audience") from None
    except jwt.InvalidIssuerError:
        raise TokenRejected("The ID token comes from another issuer.", "issuer") from None
    except jwt.ExpiredSignatureError:
        raise TokenRejected("The ID token has expired.", "expired") from None
    except jwt.PyJWTError:
        raise TokenRejected("The ID token's signature or claims are invalid.", "signature") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise TokenRejected("The ID token was not issued to this application.", "audience")
    if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
        raise TokenRejected("The ID token's nonce does not match this sign-in.", "nonce")
    return claims

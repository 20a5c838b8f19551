"""Standard Webhooks signatures (https://www.standardwebhooks.com/), made with the ``standardwebhooks`` library."""

from __future__ import annotations

import base64
import datetime as dt
import secrets

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """``whsec_`` + 32 random bytes in base64, the form the specification's libraries read."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def headers(*, message_id: str, timestamp: dt.datetime, body: str, secrets_in_use: list[str]) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (one ``v1,...`` per secret, space-separated)."""
    utc = timestamp.astimezone(dt.UTC)
    signatures = [Webhook(secret).sign(message_id, utc, body) for secret in secrets_in_use]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(utc.timestamp())),
        "webhook-signature": " ".join(signatures),
    }

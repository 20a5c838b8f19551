"""``Idempotency-Key`` for creating and acting POSTs (docs/api.md, "Idempotency").

The key is reserved before the handler runs (a unique row, committed on its own),
so two concurrent repeats cannot both act: the second waits for nothing and gets
409 while the first is in flight, or the stored first response once it is done.
Server errors release the key so the client can retry.
"""

import functools
import hashlib
import json
from contextlib import nullcontext

from django.db import IntegrityError, transaction
from rest_framework.response import Response

from core.exceptions import Conflict, ValidationFailed
from core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def _fingerprint(request) -> str:
    try:
        body = json.dumps(request.data, sort_keys=True, default=str)
    except Exception:  # noqa: BLE001 - multipart bodies: hash what we can see
        body = repr(sorted(request.data.keys())) if hasattr(request.data, "keys") else ""
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def idempotent(handler):
    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if not key or not request.user.is_authenticated:
            return handler(view, request, *args, **kwargs)
        if len(key) > MAX_KEY_LENGTH:
            raise ValidationFailed(details={HEADER: [f"At most {MAX_KEY_LENGTH} characters."]})
        fingerprint = _fingerprint(request)
        try:
            # Outside a transaction the insert commits on its own and a failed one leaves the
            # connection usable: BEGIN/COMMIT around it were two statements and ~0.25 ms of CPU
            # more per keyed request (issue 14). Inside one, the savepoint keeps it usable.
            with transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext():
                record = IdempotencyRecord.objects.create(
                    user=request.user, key=key, method=request.method, path=request.path[:512], fingerprint=fingerprint
                )
        except IntegrityError:
            existing = IdempotencyRecord.objects.get(user=request.user, key=key)
            if existing.fingerprint != fingerprint:
                raise Conflict(
                    "This Idempotency-Key was already used for a different request.", code="idempotency_key_reused"
                ) from None
            if existing.response_status is None:
                raise Conflict(
                    "A request with this Idempotency-Key is still in progress.", code="idempotency_in_progress"
                ) from None
            response = Response(existing.response_body, status=existing.response_status)
            response["Idempotent-Replayed"] = "true"
            return response

        try:
            response = handler(view, request, *args, **kwargs)
        except Exception as exc:
            # Client errors are part of the answer and are replayed; anything else frees the key.
            status = getattr(exc, "status_code", 500)
            if status >= 500:
                record.delete()
                raise
            response = view.handle_exception(exc)
        if response.status_code >= 500:
            record.delete()
            return response
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            response_status=response.status_code, response_body=response.data
        )
        return response

    return wrapper

"""The one way a transition takes hold of a request: lock its row first, then decide."""

from core.exceptions import NotFound
from requests.models import Request


def lock_request(request_id) -> Request:
    """``SELECT ... FOR UPDATE`` the request row (inside the caller's transaction); NotFound if absent.

    Concurrent transitions of one request serialize here, so every decision that follows
    reads the state as the previous transition committed it.
    """
    try:
        return (
            Request.objects.select_for_update(of=("self",))
            .select_related("workflow_version", "definition", "requester", "organization")
            .get(pk=request_id)
        )
    except (Request.DoesNotExist, ValueError, TypeError):
        raise NotFound("Request not found.") from None

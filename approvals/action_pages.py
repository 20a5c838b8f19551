"""The page behind a task e-mail's signed link (issue 16.1): decide without the app or a login.

``GET /act/<token>/`` shows the request and the decision form and never acts (mail scanners
prefetch links); the buttons POST with CSRF to the same address, which decides through
``task_decide`` as the link's assignee (separation of duties, delegation and the audit row, with
``via: email_link``, exactly as the API). Server-rendered, no script, no asset from elsewhere
(inline style only, enforced by its Content-Security-Policy); the token never leaves in a Referer
to another site (``same-origin``: ``no-referrer`` would make the form's POST send ``Origin: null``,
which the CSRF check refuses).
A refused link (invalid, expired, used, superseded) gets a page saying so and changes nothing.
"""

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods
from django_ratelimit.core import is_ratelimited

from approvals.action_links import LinkRefused, resolve
from approvals.lifecycle import services as lifecycle
from approvals.models import Assignment
from core.exceptions import ApplicationError, ValidationFailed

PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
DECISIONS = {"approve": "Approved", "reject": "Rejected", "request_changes": "Returned for changes"}
MAX_COMMENT = 5000


def _page(request, context: dict, status: int = 200):
    response = render(request, "approvals/act.html", context, status=status)
    response["Content-Security-Policy"] = PAGE_CSP
    response["Referrer-Policy"] = "same-origin"  # no-referrer makes the form POST send Origin: null (CSRF)
    response["X-Frame-Options"] = "DENY"
    return response


def _refused(request, refused: LinkRefused):
    return _page(request, {"state": "refused", "reason": refused.reason, "message": refused.message}, refused.status)


def _form_context(assignment: Assignment) -> dict:
    task = assignment.task
    req = task.request
    decisions = (
        Assignment.objects.filter(task__request=req, organization_id=req.organization_id)
        .exclude(decision="")
        .select_related("assignee", "task__step")
        .order_by("decided_at")
    )
    return {
        "state": "form",
        "assignment": assignment,
        "task": task,
        "req": req,
        "data": sorted((req.data or {}).items()) if isinstance(req.data, dict) else [],
        "attachments": req.attachments.order_by("created_at"),
        "decisions": decisions,
    }


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def act_page(request, token: str):
    if is_ratelimited(request, group="action-link", key="ip", rate=settings.ACTION_LINK_RATE_PER_IP, increment=True):
        refused = LinkRefused(429, "rate_limited", "Too many attempts from your address. Try again in a minute.")
        response = _refused(request, refused)
        response["Retry-After"] = "60"
        return response
    try:
        assignment = resolve(token)
    except LinkRefused as refused:
        return _refused(request, refused)
    if request.method == "GET":
        return _page(request, _form_context(assignment))
    decision = request.POST.get("decision", "")
    comment = request.POST.get("comment", "")[:MAX_COMMENT]
    if decision not in DECISIONS:
        return _page(
            request, {**_form_context(assignment), "errors": ["Choose approve, reject or request changes."]}, 400
        )
    try:
        task = lifecycle.task_decide(
            actor=assignment.assignee, task_id=assignment.task_id, decision=decision, comment=comment, via="email_link"
        )
    except ValidationFailed as exc:
        errors = [str(m) for msgs in exc.details.values() for m in msgs] or [exc.message]
        return _page(request, {**_form_context(assignment), "errors": errors, "comment": comment}, 400)
    except ApplicationError as exc:  # a race lost, separation of duties: nothing changed
        return _refused(request, LinkRefused(exc.status_code, exc.code, exc.message))
    return _page(
        request,
        {"state": "done", "outcome": DECISIONS[decision], "task": task, "req": task.request},
    )

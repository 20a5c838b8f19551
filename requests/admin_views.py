"""The admin builder's Simulate panel: the preview-route service on a version, for a chosen requester.

Routed in ``config/urls.py`` under the version's admin page (the workflows app does not import the
engine). Access as the version page itself: the version admin's permission and organization scope.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from accounts.models import User
from requests.route_preview import route_preview
from workflows.models import WorkflowVersion

MAX_BODY = 64 * 1024


def _approvers(step: dict) -> str:
    if step["skipped"]:
        return format_html("skipped: {} is false for this data", step["condition"])
    people = ", ".join(a["name"] or a["email"] for a in step["approvers"]) or "nobody"
    if step["fallback_reason"]:
        return format_html("{} (fallback: {})", people, step["fallback_reason"])
    return people


def render_preview(result: dict) -> str:
    rows = []
    for stage in result["stages"]:
        for step in stage["steps"]:
            rows.append(
                (
                    "wf-sim-skipped" if step["skipped"] else "wf-sim-active",
                    step["name"],
                    stage["stage"],
                    step["name"],
                    f"if {step['condition']}" if step["condition"] else "always",
                    _approvers(step),
                    format_html(" <em>condition error: {}</em>", step["condition_error"])
                    if step["condition_error"]
                    else "",
                )
            )
    body = format_html_join(
        "",
        '<tr class="{}" data-step="{}"><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}{}</td></tr>',
        rows,
    )
    errors = result["data_errors"] or {}
    error_list = format_html_join("", "<li>{}: {}</li>", ((k, " ".join(v)) for k, v in errors.items()))
    summary = (
        "Approved at once: no step applies."
        if result["approved_without_approvers"]
        else f"{sum(not s['skipped'] for st in result['stages'] for s in st['steps'])} step(s) would run."
    )
    return format_html(
        '<div class="wf-sim-result"><p><strong>{}</strong></p>{}'
        "<table><thead><tr><th>Stage</th><th>Step</th><th>Condition</th><th>Approvers</th></tr></thead>"
        "<tbody>{}</tbody></table></div>",
        summary,
        format_html('<ul class="errorlist">{}</ul><p>The request would be refused with this data.</p>', error_list)
        if errors
        else "",
        body,
    )


@require_POST
def simulate(request, pk):
    model_admin = admin.site.get_model_admin(WorkflowVersion)
    version = model_admin.get_queryset(request).select_related("definition", "organization").filter(pk=pk).first()
    if version is None or not model_admin.has_view_permission(request, version):
        raise Http404("No such version.")
    if len(request.body) > MAX_BODY:
        return HttpResponseBadRequest("Sample data too large.")
    try:
        payload = json.loads(request.body or b"{}")
    except ValueError:
        return HttpResponseBadRequest("Not JSON.")
    if not isinstance(payload, dict) or not isinstance(payload.get("data", {}), dict):
        return HttpResponseBadRequest('Expected {"requester": "...", "data": {...}}.')
    requester = (
        User.objects.for_organization(version.organization_id)
        .filter(email__iexact=str(payload.get("requester") or ""), is_active=True)
        .first()
    )
    if requester is None:
        return HttpResponseBadRequest("Choose a requester: an active user of the organization (e-mail).")
    result = route_preview(version=version, requester=requester, data=payload.get("data") or {})
    return HttpResponse(render_preview(result))

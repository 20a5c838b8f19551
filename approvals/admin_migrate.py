"""The admin page that moves running requests to a published version (issue 16.4).

Routed in ``config/urls.py`` under the version's admin page (the workflows app does not import the
lifecycle). GET with a source version shows the dry run; POST migrates. Both call
``workflow_migrate`` as the signed-in user (``workflows.manage``, their organization).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import Http404
from django.shortcuts import render

from approvals.lifecycle.services import workflow_migrate
from core.exceptions import ApplicationError
from workflows.models import VersionStatus, WorkflowVersion


class MigrateForm(forms.Form):
    from_version = forms.TypedChoiceField(coerce=int, label="Move the running requests of")
    restart = forms.BooleanField(
        required=False, label="Restart requests whose completed stages would change (a new round)"
    )

    def __init__(self, *args, numbers: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from_version"].choices = [(n, f"v{n}") for n in numbers]


def migrate_view(request, pk):
    model_admin = admin.site.get_model_admin(WorkflowVersion)
    version = model_admin.get_queryset(request).select_related("definition").filter(pk=pk).first()
    if version is None or not model_admin.has_view_permission(request, version):
        raise Http404("No such version.")
    numbers = list(
        WorkflowVersion.objects.filter(definition=version.definition, number__lt=version.number)
        .order_by("-number")
        .values_list("number", flat=True)
    )
    data = request.POST if request.method == "POST" else (request.GET or None)
    form = MigrateForm(data, numbers=numbers)
    context = {
        **admin.site.each_context(request),
        "title": f"Move running requests to {version}",
        "version": version,
        "form": form,
        "published": version.status == VersionStatus.PUBLISHED,
        "results": None,
        "error": "",
        "dry_run": request.method != "POST",
    }
    if context["published"] and data is not None and form.is_valid():
        try:
            run = workflow_migrate(
                actor=request.user,
                workflow_id=version.definition_id,
                from_version=form.cleaned_data["from_version"],
                to_version=version.number,
                dry_run=request.method != "POST",
                restart=form.cleaned_data["restart"],
            )
            context["results"], context["remaining"] = run["results"], run["remaining"]
        except ApplicationError as exc:
            context["error"] = exc.message
            status = exc.status_code
            return render(request, "admin/approvals/migrate.html", context, status=status)
    return render(request, "admin/approvals/migrate.html", context)

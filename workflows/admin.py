"""The workflow builder in the admin: definitions, versions with their steps, publishing, the route diagram.

A version's page holds the form designer (fields as rows, the raw JSON Schema as an advanced view,
a live preview of the requester's form), the compact step editor (one line per step, the rest in a
collapsible details area showing what applies), Validate / Publish (with a confirmation listing the
differences from the version in force) / Create new draft, the route diagram (also exported as SVG)
and the Simulate panel. The page's behaviour is ``static/workflows/builder.js``: plain script, no
build step, no external asset.

Writes go through ``workflows.services`` and the one validator ``workflows.validation``; published and
retired versions are read-only here (no change permission) and in the service.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core.admin import OrgScopedAdmin, SoftDeleteAdmin, call_service
from core.exceptions import ApplicationError, ValidationFailed
from workflows import selectors, services
from workflows.diagram import route_svg
from workflows.models import (
    ApproverType,
    EscalateTo,
    ResubmitPolicy,
    Step,
    VersionStatus,
    WorkflowDefinition,
    WorkflowVersion,
)
from workflows.validation import STEP_FIELDS, check_form_schema, validate_version
from workflows.version_diff import diff_versions

MANAGE = "workflows.manage"


def _error_text(exc: ApplicationError) -> str:
    parts = [f"{key}: {' '.join(msgs)}" for key, msgs in (exc.details or {}).items()]
    return f"{exc.message} " + " | ".join(parts) if parts else exc.message


# --- versions ---------------------------------------------------------------------------


def _people_for(version: WorkflowVersion) -> dict:
    steps = version.steps.all()
    slugs = {s.approver_ref for s in steps if s.approver_type == ApproverType.ROLE}
    slugs |= {s.escalate_to_ref for s in steps if s.escalate_to == EscalateTo.ROLE}
    return selectors.role_people(organization=version.organization_id, slugs=slugs)


class SchemaDesignerWidget(forms.Textarea):
    """The raw schema textarea inside the designer (builder.js turns it into rows and a preview)."""

    template_name = "workflows/widgets/schema_designer.html"

    def __init__(self, attrs=None):
        super().__init__(
            attrs={"rows": 18, "cols": 80, "class": "wf-schema-raw", "spellcheck": "false", **(attrs or {})}
        )


class IndentedJSONField(forms.JSONField):
    """Shown indented, so a schema written by hand keeps its shape on the page."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class VersionForm(forms.ModelForm):
    form_schema = IndentedJSONField(required=False, widget=SchemaDesignerWidget, label="Request form")

    class Meta:
        model = WorkflowVersion
        fields = ["form_schema", "distinct_approvers"]

    def clean_form_schema(self):
        value = self.cleaned_data.get("form_schema")
        if value is None:
            value = {}
        problems = check_form_schema(value)
        if problems:
            raise ValidationError(problems)
        return value


class StepFormSet(BaseInlineFormSet):
    """Validates the whole version (form schema + every step) with the one validator; errors land on the step."""

    def _live_forms(self):
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or (form.empty_permitted and not form.has_changed()):
                continue
            if self.can_delete and self._should_delete_form(form):
                continue
            yield form

    def step_dicts(self) -> list[dict]:
        return [{f: form.cleaned_data.get(f) for f in STEP_FIELDS} for form in self._live_forms()]

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        live = list(self._live_forms())
        steps = []
        for form in live:
            data = {f: form.cleaned_data.get(f) for f in STEP_FIELDS}
            for f in ("approver_ref", "condition", "escalate_to_ref", "name"):
                data[f] = data[f] or ""
            if data["max_escalations"] is None:
                data["max_escalations"] = 1
            if data["position"] is None:
                data["position"] = 0
            steps.append(data)
        version = self.instance
        try:
            validate_version(
                organization=version.organization,
                form_schema=version.form_schema,
                steps=steps,
                distinct_approvers=version.distinct_approvers,
            )
        except ValidationFailed as exc:
            leftovers = []
            for key, msgs in exc.details.items():
                if key.startswith("steps[") and "]." in key:
                    index = int(key[len("steps[") : key.index("]")])
                    field = key.split("].", 1)[1]
                    form = live[index]
                    for msg in msgs:
                        form.add_error(field if field in form.fields else None, msg)
                elif key != "form_schema":
                    leftovers.extend(msgs)
            if leftovers:
                raise ValidationError(leftovers) from None


# One line per step; the rest in a collapsible area (builder.js hides what does not apply).
STEP_LINE = ("stage", "name", "approver_type", "approver_ref", "mode", "quorum_count", "sla_hours")
STEP_DETAILS = [
    "key",
    "condition",
    "position",
    "reminder_at_percent",
    ("escalate_to", "escalate_to_ref"),
    "on_breach",
    ("escalation_repeat_hours", "max_escalations"),
    "on_reject",
    "allow_self_approval",
]


class StepInline(admin.StackedInline):
    model = Step
    formset = StepFormSet
    fieldsets = [
        (None, {"fields": [STEP_LINE]}),
        (
            "Condition, reminders, escalation, on reject",
            {"classes": ["collapse", "wf-step-details"], "fields": STEP_DETAILS},
        ),
    ]
    extra = 1
    ordering = ["stage", "position", "name"]
    classes = ["wf-steps"]

    def _parent_admin(self):
        return self.admin_site._registry[WorkflowVersion]

    def _editable(self, request, obj) -> bool:
        return self._parent_admin()._has_code(request) and (obj is None or obj.status == VersionStatus.DRAFT)

    def has_view_permission(self, request, obj=None):
        return self._parent_admin()._has_code(request)

    def has_add_permission(self, request, obj=None):
        return self._editable(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(request, obj)

    def get_extra(self, request, obj=None, **kwargs):
        return self.extra if obj is not None and obj.status == VersionStatus.DRAFT else 0

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "condition" and field is not None:
            field.widget = forms.TextInput(
                attrs={"size": 50, "placeholder": "e.g. amount > 5000", "class": "wf-condition"}
            )
        if db_field.name in ("approver_ref", "escalate_to_ref") and field is not None:
            field.widget.attrs.update({"size": 22, "autocomplete": "off", "class": "wf-ref"})
        if db_field.name == "name" and field is not None:
            field.widget.attrs["size"] = 22
        if db_field.name == "sla_hours" and field is not None:
            field.label, field.widget.attrs["title"] = "SLA hours", "Business hours on the organization's calendar"
        if db_field.name in ("approver_type", "approver_ref") and field is not None:
            field.label = {"approver_type": "Approver", "approver_ref": "Whom"}[db_field.name]
        if (
            db_field.name
            in (
                "stage",
                "position",
                "quorum_count",
                "sla_hours",
                "reminder_at_percent",
                "escalation_repeat_hours",
                "max_escalations",
            )
            and field is not None
        ):
            field.widget.attrs["style"] = "width:4em"
        return field


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(OrgScopedAdmin):
    admin_permission_code = MANAGE
    audit_action_prefix = "workflow"
    form = VersionForm
    inlines = [StepInline]
    list_display = ["definition", "number", "status", "step_count", "published_at"]
    list_filter = ["status"]
    list_select_related = ["definition"]
    search_fields = ["definition__key", "definition__name"]
    actions = ["publish_selected", "new_draft_selected", "migrate_requests_selected"]
    readonly_fields = [
        "definition",
        "number",
        "status",
        "published_at",
        "published_by",
        "route_diagram",
        "form_schema_json",
    ]
    fieldsets = [
        (None, {"fields": ["definition", "number", "status", "published_at", "published_by"]}),
        ("Form and rules", {"fields": ["form_schema", "distinct_approvers"]}),
        ("Route", {"fields": ["route_diagram"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("steps")

    def get_fieldsets(self, request, obj=None):
        if obj is None or self.has_change_permission(request, obj):
            return self.fieldsets
        # View-only: the schema as indented JSON (the preview in the Simulate panel shows the form).
        return [
            (name, {**opts, "fields": ["form_schema_json" if f == "form_schema" else f for f in opts["fields"]]})
            for name, opts in self.fieldsets
        ]

    @admin.display(description="Form schema")
    def form_schema_json(self, obj):
        return format_html('<pre class="wf-schema-view">{}</pre>', json.dumps(obj.form_schema, indent=2))

    @admin.display(description="steps")
    def step_count(self, obj):
        return len(obj.steps.all())

    @admin.display(description="Route diagram")
    def route_diagram(self, obj):
        if not obj or not obj.pk:
            return "-"
        # route_svg escapes every value that comes from the database.
        svg = mark_safe(route_svg(obj, people=_people_for(obj)))  # noqa: S308
        url = reverse("admin:workflows_workflowversion_diagram", args=[obj.pk])
        return format_html(
            '<div class="wf-diagram">{}</div><p><a class="button" href="{}" download>Export as SVG</a> '
            "Click a step to open its row.</p>",
            svg,
            url,
        )

    # --- the builder's pages -------------------------------------------------------------
    def get_urls(self):
        def view(func):
            return self.admin_site.admin_view(func)

        return [
            path("<uuid:pk>/publish/", view(self.publish_view), name="workflows_workflowversion_publish"),
            path("<uuid:pk>/new-draft/", view(self.new_draft_view), name="workflows_workflowversion_new_draft"),
            path("<uuid:pk>/diagram.svg", view(self.diagram_view), name="workflows_workflowversion_diagram"),
            *super().get_urls(),
        ]

    def _version(self, request, pk) -> WorkflowVersion:
        version = self.get_queryset(request).select_related("definition").filter(pk=pk).first()
        if version is None or not self.has_view_permission(request, version):
            raise Http404("No such version.")
        return version

    def _change_url(self, version) -> str:
        return reverse("admin:workflows_workflowversion_change", args=[version.pk])

    def publish_view(self, request, pk):
        """GET: what publishing changes (diff, running requests); POST: publish through the service."""
        version = self._version(request, pk)
        if not self.has_change_permission(request, version):
            raise PermissionDenied("Only a draft can be published.")
        if request.method == "POST":
            try:
                services.version_publish(actor=request.user, version=version)
            except ApplicationError as exc:
                self.message_user(request, f"Not published: {_error_text(exc)}", messages.ERROR)
            else:
                self.message_user(request, f"Published {version.definition} v{version.number}.", messages.SUCCESS)
            return HttpResponseRedirect(self._change_url(version))
        current = selectors.published_for(definition=version.definition)
        content = services.version_as_dict(version)
        try:
            validate_version(organization=version.organization, for_publish=True, **content)
            problems = []
        except ValidationFailed as exc:
            problems = [f"{' '.join(msgs)}" for msgs in exc.details.values()]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Publish {version.definition} v{version.number}?",
            "opts": self.model._meta,
            "version": version,
            "current": current,
            "diff": diff_versions(current=services.version_as_dict(current) if current else None, draft=content),
            "running": selectors.running_requests_on(version=current) if current else 0,
            "problems": problems,
            "change_url": self._change_url(version),
        }
        return render(request, "admin/workflows/workflowversion/publish_confirm.html", context)

    def new_draft_view(self, request, pk):
        version = self._version(request, pk)
        if request.method != "POST":
            return HttpResponseRedirect(self._change_url(version))
        try:
            draft = services.draft_from_version(actor=request.user, version=version)
        except ApplicationError as exc:
            self.message_user(request, _error_text(exc), messages.ERROR)
            return HttpResponseRedirect(self._change_url(version))
        self.message_user(request, f"Created draft v{draft.number} from v{version.number}.", messages.SUCCESS)
        return HttpResponseRedirect(self._change_url(draft))

    def diagram_view(self, request, pk):
        version = self._version(request, pk)
        response = HttpResponse(route_svg(version, people=_people_for(version)), content_type="image/svg+xml")
        name = f"{version.definition.key}-v{version.number}.svg"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["builder"] = {
                "schema": obj.form_schema or {},
                "choices": selectors.builder_choices(organization=obj.organization_id),
                "simulate_url": reverse("workflow-simulate", args=[obj.pk]),
                "editable": self.has_change_permission(request, obj),
            }
            context["builder_publish_url"] = reverse("admin:workflows_workflowversion_publish", args=[obj.pk])
            context["builder_new_draft_url"] = reverse("admin:workflows_workflowversion_new_draft", args=[obj.pk])
            context["builder_editable"] = context["builder"]["editable"]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def response_change(self, request, obj):
        if "_publish" in request.POST:
            return HttpResponseRedirect(reverse("admin:workflows_workflowversion_publish", args=[obj.pk]))
        if "_validate" in request.POST:
            version = self._version(request, obj.pk)
            try:
                validate_version(
                    organization=version.organization, for_publish=True, **services.version_as_dict(version)
                )
            except ValidationFailed as exc:
                self.message_user(request, f"Saved, but not ready to publish: {_error_text(exc)}", messages.WARNING)
            else:
                fields = len((version.form_schema or {}).get("properties") or {})
                self.message_user(
                    request,
                    f"Valid: {version.steps.count()} step(s), {fields} form field(s); ready to publish.",
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(self._change_url(obj))
        return super().response_change(request, obj)

    def has_add_permission(self, request):
        return False  # versions come from a definition (v1) or "New draft from this version"

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or obj.status == VersionStatus.DRAFT)

    def save_model(self, request, obj, form, change):
        # Saved together with the steps in save_related, through the service.
        pass

    def save_related(self, request, form, formsets, change):
        step_formset = next(fs for fs in formsets if isinstance(fs, StepFormSet))
        call_service(
            services.draft_save,
            actor=request.user,
            definition=form.instance.definition,
            version=form.instance,
            form_schema=form.cleaned_data["form_schema"],
            distinct_approvers=form.cleaned_data["distinct_approvers"],
            steps=[
                {
                    **s,
                    "approver_ref": s["approver_ref"] or "",
                    "condition": s["condition"] or "",
                    "escalate_to_ref": s["escalate_to_ref"] or "",
                    "escalate_to": s["escalate_to"] or "",
                    "position": s["position"] or 0,
                    "max_escalations": 1 if s["max_escalations"] is None else s["max_escalations"],
                }
                for s in step_formset.step_dicts()
            ],
        )
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    @admin.action(description="Publish")
    def publish_selected(self, request, queryset):
        for version in queryset.select_related("definition"):
            try:
                services.version_publish(actor=request.user, version=version)
            except ApplicationError as exc:
                self.message_user(request, f"{version}: {_error_text(exc)}", messages.ERROR)
            else:
                self.message_user(request, f"Published {version.definition} v{version.number}.", messages.SUCCESS)

    @admin.action(description="New draft from this version")
    def new_draft_selected(self, request, queryset):
        for version in queryset.select_related("definition"):
            try:
                draft = services.draft_from_version(actor=request.user, version=version)
            except ApplicationError as exc:
                self.message_user(request, f"{version}: {_error_text(exc)}", messages.ERROR)
            else:
                url = reverse("admin:workflows_workflowversion_change", args=[draft.pk])
                self.message_user(
                    request,
                    format_html('Created draft <a href="{}">v{} of {}</a>.', url, draft.number, version.definition),
                    messages.SUCCESS,
                )

    @admin.action(description="Move running requests to this version")
    def migrate_requests_selected(self, request, queryset):
        """To the dry-run page of the move (approvals' admin page: moving requests is the lifecycle's),
        with the newest earlier version that has pending requests picked."""
        versions = list(queryset[:2])
        if len(versions) != 1 or versions[0].status != VersionStatus.PUBLISHED:
            self.message_user(request, "Select the one published version to move requests to.", messages.WARNING)
            return None
        url = reverse("workflow-migrate-admin", args=[versions[0].pk])
        source = selectors.earlier_version_with_pending_requests(version=versions[0])
        if source is None:
            self.message_user(request, f"No pending request runs on an earlier version of {versions[0].definition}.")
        return HttpResponseRedirect(url if source is None else f"{url}?from_version={source}")


# --- definitions --------------------------------------------------------------------------


class DefinitionForm(forms.ModelForm):
    class Meta:
        model = WorkflowDefinition
        fields = ["key", "name", "description", "category", "is_active", "reference_prefix", "resubmit_policy"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["resubmit_policy"].required = False  # left out: the default policy

    def clean_resubmit_policy(self):
        return self.cleaned_data.get("resubmit_policy") or ResubmitPolicy.RESTART_IF_CHANGED


@admin.register(WorkflowDefinition)
class WorkflowDefinitionAdmin(SoftDeleteAdmin):
    admin_permission_code = MANAGE
    audit_action_prefix = "workflow"
    form = DefinitionForm
    list_display = ["name", "key", "category", "is_active", "resubmit_policy", "published", "draft"]
    list_filter = ["is_active", "category"]
    search_fields = ["key", "name"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("versions")

    def get_readonly_fields(self, request, obj=None):
        return ["key", "versions_links"] if obj else []

    def get_fields(self, request, obj=None):
        fields = ["key", "name", "description", "category", "is_active", "reference_prefix", "resubmit_policy"]
        return [*fields, "versions_links"] if obj else fields

    def _status_number(self, obj, status):
        return next((v.number for v in obj.versions.all() if v.status == status), None)

    @admin.display(description="published")
    def published(self, obj):
        return self._status_number(obj, VersionStatus.PUBLISHED) or "-"

    @admin.display(description="draft")
    def draft(self, obj):
        return self._status_number(obj, VersionStatus.DRAFT) or "-"

    @admin.display(description="Versions")
    def versions_links(self, obj):
        rows = format_html_join(
            "",
            '<li><a href="{}">v{} ({})</a></li>',
            (
                (reverse("admin:workflows_workflowversion_change", args=[v.pk]), v.number, v.status)
                for v in sorted(obj.versions.all(), key=lambda v: -v.number)
            ),
        )
        return format_html("<ul>{}</ul>", rows)

    def save_model(self, request, obj, form, change):
        if change:
            call_service(
                services.workflow_update,
                actor=request.user,
                definition=obj,
                **{f: form.cleaned_data[f] for f in services.DEFINITION_FIELDS if f in form.changed_data},
            )
            return
        created = call_service(
            services.workflow_create,
            actor=request.user,
            organization=request.user.organization,
            **{f: form.cleaned_data[f] for f in ["key", *services.DEFINITION_FIELDS]},
        )
        obj.pk = created.pk
        obj._state.adding = False
        obj._state.db = created._state.db

    def response_add(self, request, obj, post_url_continue=None):
        draft = obj.versions.filter(status=VersionStatus.DRAFT).first()
        if draft is not None and "_addanother" not in request.POST:
            self.message_user(request, f"Created {obj.name}: now add its form and steps to draft v1.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:workflows_workflowversion_change", args=[draft.pk]))
        return super().response_add(request, obj, post_url_continue)

    def get_deleted_objects(self, objs, request):
        # Soft delete: nothing cascades, versions stay for the requests that pin them.
        return [str(o) for o in objs], {}, set(), []

    def delete_via_service(self, request, obj):
        call_service(services.workflow_delete, actor=request.user, definition=obj)

    def restore_via_service(self, request, obj):
        call_service(services.workflow_restore, actor=request.user, definition=obj)

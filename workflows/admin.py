"""The workflow builder in the admin: definitions, versions with their steps, publishing, the route diagram.

Writes go through ``workflows.services`` and the one validator ``workflows.validation``; published and
retired versions are read-only here (no change permission) and in the service.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core.admin import OrgScopedAdmin, SoftDeleteAdmin, call_service
from core.exceptions import ApplicationError, ValidationFailed
from workflows import services
from workflows.models import (
    ApprovalMode,
    ApproverType,
    ResubmitPolicy,
    Step,
    VersionStatus,
    WorkflowDefinition,
    WorkflowVersion,
)
from workflows.validation import STEP_FIELDS, check_form_schema, validate_version

MANAGE = "workflows.manage"


def _error_text(exc: ApplicationError) -> str:
    parts = [f"{key}: {' '.join(msgs)}" for key, msgs in (exc.details or {}).items()]
    return f"{exc.message} " + " | ".join(parts) if parts else exc.message


# --- route diagram ------------------------------------------------------------------

DIAGRAM_CSS = """
<style>
.wf-route{display:flex;align-items:stretch;gap:0;overflow-x:auto;padding:8px 0;font-size:13px}
.wf-stage{display:flex;flex-direction:column;gap:8px;min-width:210px;padding:8px;border:1px dashed #9aa5b1;
 border-radius:6px;background:#f7f9fb}
.wf-stage h4{margin:0 0 4px;font-size:12px;text-transform:uppercase;color:#52606d;background:none;padding:0}
.wf-arrow{align-self:center;font-size:22px;color:#52606d;padding:0 8px}
.wf-step{border:1px solid #3e4c59;border-radius:6px;padding:6px 8px;background:#fff;color:#1f2933}
.wf-step b{display:block;margin-bottom:2px}
.wf-step .wf-meta{color:#52606d}
.wf-step .wf-cond{margin-top:3px;font-family:monospace;background:#fff3c4;padding:1px 4px;border-radius:3px}
.wf-step.wf-conditional{border-style:dashed}
.wf-end{align-self:center;padding:4px 10px;border-radius:12px;background:#e3f9e5;color:#05400a}
</style>
"""


def _approvers(step: Step) -> str:
    kind = ApproverType(step.approver_type).label if step.approver_type in ApproverType.values else step.approver_type
    return f"{kind}: {step.approver_ref}" if step.approver_ref else kind


def _mode(step: Step) -> str:
    if step.mode == ApprovalMode.QUORUM:
        return f"quorum of {step.quorum_count}"
    return step.mode


def route_diagram_html(version: WorkflowVersion) -> str:
    """Stages left to right, parallel steps stacked; each with mode, condition and SLA. No external assets."""
    steps = sorted(version.steps.all(), key=lambda s: (s.stage, s.position, s.name))
    if not steps:
        return format_html('<div class="wf-route-empty">{}</div>', "No steps yet.")
    stages: dict[int, list[Step]] = {}
    for step in steps:
        stages.setdefault(step.stage, []).append(step)
    columns = []
    for number, stage_steps in sorted(stages.items()):
        cards = format_html_join(
            "",
            '<div class="wf-step{}" data-step="{}"><b>{}</b><div class="wf-meta">{}</div>'
            '<div class="wf-meta">mode: {}</div><div class="wf-meta">{}</div>{}</div>',
            (
                (
                    " wf-conditional" if s.condition else "",
                    s.name,
                    s.name,
                    _approvers(s),
                    _mode(s),
                    f"SLA {s.sla_hours}h" if s.sla_hours else "no SLA",
                    format_html('<div class="wf-cond">if {}</div>', s.condition) if s.condition else "",
                )
                for s in stage_steps
            ),
        )
        label = "parallel" if len(stage_steps) > 1 else "step"
        columns.append(
            format_html(
                '<div class="wf-stage" data-stage="{}"><h4>Stage {} · {}</h4>{}</div>', number, number, label, cards
            )
        )
    arrow = format_html('<div class="wf-arrow">{}</div>', "→")
    parts = []
    for column in columns:
        parts.extend([column, arrow])
    body = format_html_join("", "{}", ((p,) for p in parts))
    end = format_html('<div class="wf-end">{}</div>', "approved")
    # DIAGRAM_CSS is a constant; every value from the database went through format_html (escaped).
    css = mark_safe(DIAGRAM_CSS)  # noqa: S308
    return css + format_html('<div class="wf-route" id="wf-route">{}{}</div>', body, end)


# --- versions ---------------------------------------------------------------------------


class VersionForm(forms.ModelForm):
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


class StepInline(admin.TabularInline):
    model = Step
    formset = StepFormSet
    fields = STEP_FIELDS
    extra = 2
    ordering = ["stage", "position", "name"]

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
            field.widget = forms.TextInput(attrs={"size": 24, "placeholder": "e.g. amount > 5000"})
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
    actions = ["publish_selected", "new_draft_selected"]
    readonly_fields = ["definition", "number", "status", "published_at", "published_by", "route_diagram"]
    fieldsets = [
        (None, {"fields": ["definition", "number", "status", "published_at", "published_by"]}),
        ("Form and rules", {"fields": ["form_schema", "distinct_approvers"]}),
        ("Route", {"fields": ["route_diagram"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("steps")

    @admin.display(description="steps")
    def step_count(self, obj):
        return len(obj.steps.all())

    @admin.display(description="Route diagram")
    def route_diagram(self, obj):
        return route_diagram_html(obj) if obj and obj.pk else "-"

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

    def delete_model(self, request, obj):
        call_service(services.workflow_delete, actor=request.user, definition=obj)

    @admin.action(description="Restore selected (undo soft delete)")
    def restore_selected(self, request, queryset):
        for obj in queryset.filter(deleted_at__isnull=False):
            try:
                services.workflow_restore(actor=request.user, definition=obj)
            except ApplicationError as exc:
                self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"Restored {obj}.", messages.SUCCESS)

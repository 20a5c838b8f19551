"""The route diagram as one SVG (inline on the version page and exported for documentation).

Stages run left to right and a stage's steps stack in its column. Every path is drawn: the
conditions on the edges into a step, the approved end, and per step where a rejection goes
(the rejected end, or back to the requester). Each step box shows who decides (with the people
a role resolves to today), the mode, the SLA and what happens on a breach; it links to its row
in the step editor (``#steps-N``). Self-contained: no script, no external font or stylesheet.
"""

from __future__ import annotations

import textwrap
from html import escape

from workflows.models import ApprovalMode, ApproverType, EscalateTo, OnBreach, OnReject, Step, WorkflowVersion

BOX_W, LINE_H, PAD, GAP_Y = 250, 16, 8, 34
COL_W = BOX_W + 150
LEFT = 150  # room for the start node
TOP = 40
CHARS = 36

_APPROVER = {
    ApproverType.ROLE: "role {ref}",
    ApproverType.USER: "user {ref}",
    ApproverType.DEPARTMENT_HEAD: "head of the requester's department",
    ApproverType.REQUESTER_MANAGER: "the requester's manager",
    ApproverType.FORM_FIELD: "the person in field '{ref}'",
}
_MODE = {ApprovalMode.ANY: "any one approves", ApprovalMode.ALL: "everyone approves"}


def _people(step: Step, people: dict) -> str:
    if step.approver_type == ApproverType.ROLE:
        names, count = people.get(step.approver_ref, ([], 0))
        if not count:
            return "nobody has this role today"
        more = f" +{count - len(names)}" if count > len(names) else ""
        return f"{', '.join(names)}{more} ({count})"
    if step.approver_type in (ApproverType.DEPARTMENT_HEAD, ApproverType.REQUESTER_MANAGER, ApproverType.FORM_FIELD):
        return "resolved for each request"
    return ""


def _escalation(step: Step, people: dict) -> list[str]:
    if not step.sla_hours:
        return []
    lines = [f"SLA {step.sla_hours} business hours"]
    if step.reminder_at_percent:
        lines[0] += f", reminder at {step.reminder_at_percent}%"
    if step.escalate_to:
        whom = {
            EscalateTo.MANAGER: "the assignee's manager",
            EscalateTo.ROLE: f"role {step.escalate_to_ref}",
            EscalateTo.USER: step.escalate_to_ref,
        }[step.escalate_to]
        if step.escalate_to == EscalateTo.ROLE:
            _names, count = people.get(step.escalate_to_ref, ([], 0))
            whom += f" ({count})" if count else " (nobody)"
        tiers = step.max_escalations or 1
        repeat = f", up to {tiers}× every {step.escalation_repeat_hours}h" if step.escalation_repeat_hours else ""
        lines.append(f"escalates to {whom}{repeat}")
    if step.on_breach != OnBreach.NOTIFY:
        lines.append(f"on breach: {OnBreach(step.on_breach).label.lower()}")
    return lines


def step_lines(step: Step, people: dict) -> list[tuple[str, str]]:
    """(css class, text) lines of a step box, wrapped to the box."""
    approver = _APPROVER.get(step.approver_type, step.approver_type).format(ref=step.approver_ref)
    mode = _MODE.get(step.mode) or f"quorum of {step.quorum_count}"
    mode = mode if step.sla_hours else f"{mode}, no SLA"
    raw = [("who", approver), ("people", _people(step, people)), ("meta", mode)]
    raw += [("sla", line) for line in _escalation(step, people)]
    if step.allow_self_approval:
        raw.append(("meta", "the requester may approve"))
    out = [("name", step.name)]
    for cls, text in raw:
        out += [(cls, part) for part in textwrap.wrap(text, CHARS)]
    return out


def _text(x, y, text, cls="", anchor="start") -> str:
    return f'<text x="{x}" y="{y}" class="{cls}" text-anchor="{anchor}">{escape(text)}</text>'


def _arrow(x1, y1, x2, y2, cls="edge", label="") -> str:
    mid = (x1 + x2) / 2
    path = f'<path d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" class="{cls}" marker-end="url(#arrow)"/>'
    if label:
        path += _text(x2 - 8, y2 - 6, label, "cond", "end")
    return path


STYLE = """
text{font:12px sans-serif;fill:#1f2933}
.name{font-weight:bold;font-size:13px}.people{fill:#52606d;font-style:italic}.sla{fill:#8d2b0b}
.meta{fill:#3e4c59}.cond{font:11px monospace;fill:#7c5e10}.lane{fill:#52606d;font-size:11px}
.box{fill:#fff;stroke:#3e4c59;stroke-width:1.2;rx:6}.box.conditional{stroke-dasharray:5 3}
a:hover .box{fill:#eef6ff}.stagebg{fill:#f7f9fb;stroke:#cbd2d9;stroke-dasharray:4 3}
.edge{fill:none;stroke:#3e4c59;stroke-width:1.3}.reject{fill:none;stroke:#c62828;stroke-dasharray:5 3}
.return{fill:none;stroke:#cb6e17;stroke-dasharray:5 3}.node{stroke-width:1.2}
.start{fill:#e0e8f9;stroke:#3e4c59}.approved{fill:#e3f9e5;stroke:#0e7c1c}.rejected{fill:#ffe3e3;stroke:#c62828}
.returned{fill:#fff3c4;stroke:#cb6e17}.stagehead{font-size:11px;fill:#52606d;text-transform:uppercase}
"""


def route_svg(version: WorkflowVersion, *, people: dict | None = None, steps: list[Step] | None = None) -> str:
    """``people``: role slug -> (first names, count) (``selectors.role_people``)."""
    people = people or {}
    steps = sorted(steps if steps is not None else version.steps.all(), key=lambda s: (s.stage, s.position, s.name))
    stages: dict[int, list[tuple[int, Step]]] = {}
    for index, step in enumerate(steps):
        stages.setdefault(step.stage, []).append((index, step))
    parts: list[str] = []
    boxes: dict[int, tuple[float, float, float]] = {}  # index -> x, y, height
    column_bottom = TOP
    for col, (number, members) in enumerate(sorted(stages.items())):
        x = LEFT + col * COL_W
        y = TOP
        for index, step in members:
            lines = step_lines(step, people)
            height = PAD * 2 + LINE_H * len(lines)
            boxes[index] = (x, y, height)
            cls = "box conditional" if step.condition else "box"
            inner = [f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{height}" class="{cls}"/>']
            for i, (line_cls, text) in enumerate(lines):
                inner.append(_text(x + PAD, y + PAD + LINE_H * (i + 1) - 4, text, line_cls))
            parts.append(
                f'<a href="#steps-{index}" data-step="{escape(step.name)}" class="wf-step-link">'
                f"<title>{escape(step.name)}: open its row</title>{''.join(inner)}</a>"
            )
            y += height + GAP_Y
        column_bottom = max(column_bottom, y)
        label = "parallel" if len(members) > 1 else "step"
        parts.insert(0, _text(x, TOP - 12, f"Stage {number} · {label}", "stagehead"))
        parts.insert(
            0,
            f'<rect x="{x - 12}" y="{TOP - 28}" width="{BOX_W + 24}" height="{y - TOP + 14}" '
            f'class="stagebg" data-stage="{number}"/>',
        )

    ncols = len(stages)
    width = LEFT + max(ncols, 1) * COL_W + 130
    mid = TOP + 30
    # start and the approved end
    parts.append(f'<rect x="20" y="{mid - 16}" width="96" height="32" rx="16" class="node start"/>')
    parts.append(_text(68, mid + 4, "Submitted", "", "middle"))
    end_x = LEFT + ncols * COL_W
    parts.append(f'<rect x="{end_x}" y="{mid - 16}" width="100" height="32" rx="16" class="node approved"/>')
    parts.append(_text(end_x + 50, mid + 4, "Approved", "", "middle"))

    ordered = sorted(stages.items())
    sources = [(116.0, float(mid))]
    for _, members in ordered:
        targets = []
        for index, step in members:
            x, y, height = boxes[index]
            for sx, sy in sources:
                label = f"if {step.condition}" if step.condition and (sx, sy) == sources[0] else ""
                parts.append(_arrow(sx, sy, x, y + 20, "edge", label[:40]))
            targets.append((x + BOX_W, y + 20))
        sources = targets
    for sx, sy in sources:
        parts.append(_arrow(sx, sy, end_x, mid, "edge"))
    if not steps:
        parts.append(_arrow(116, mid, end_x, mid, "edge"))
        parts.append(_text(LEFT, mid + 40, "No steps yet: a request would be approved at once.", "meta"))

    # rejection paths: each step down its column's lane to the rejected / returned end
    rail_reject, rail_return = column_bottom + 10, column_bottom + 34
    used = set()
    for index, step in enumerate(steps):
        x, y, height = boxes[index]
        kind = "return" if step.on_reject == OnReject.RETURN_TO_REQUESTER else "reject"
        used.add(kind)
        lane_x = x + BOX_W + (14 if kind == "reject" else 26)
        rail = rail_reject if kind == "reject" else rail_return
        parts.append(f'<path d="M{x + BOX_W},{y + height - 10} H{lane_x} V{rail}" class="{kind}"/>')
    ends_x = end_x
    if "reject" in used or steps:
        parts.append(f'<path d="M{LEFT},{rail_reject} H{ends_x}" class="reject" marker-end="url(#arrow)"/>')
        parts.append(_text(LEFT, rail_reject - 4, "rejected by a step", "lane"))
        parts.append(
            f'<rect x="{ends_x}" y="{rail_reject - 14}" width="100" height="28" rx="14" class="node rejected"/>'
        )
        parts.append(_text(ends_x + 50, rail_reject + 4, "Rejected", "", "middle"))
    if "return" in used:
        parts.append(f'<path d="M{LEFT},{rail_return} H{ends_x}" class="return" marker-end="url(#arrow)"/>')
        parts.append(_text(LEFT, rail_return + 14, "returned: the requester edits and resubmits", "lane"))
        parts.append(
            f'<rect x="{ends_x}" y="{rail_return - 2}" width="120" height="28" rx="14" class="node returned"/>'
        )
        parts.append(_text(ends_x + 60, rail_return + 16, "Back to requester", "", "middle"))
    height = rail_return + 50
    defs = (
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#3e4c59"/></marker></defs>'
    )
    title = f"{version.definition.name} v{version.number} ({version.status})"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="wf-route" class="wf-route" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title><style>{STYLE}</style>{defs}{''.join(parts)}</svg>"
    )

"""The request lifecycle: the only code that writes ``Request.status``, ``ApprovalTask.status``
and assignments' decisions (``approvals/tests/test_lifecycle_writers.py`` enforces it).

- ``transitions``: the declared ``(state, action) -> state`` tables and their one check (409);
- ``locks``: lock helpers, one lock order (request -> task -> assignment), organization-scoped;
- ``checks``: ``check_*`` (access, input, delegation, separation of duties), write nothing;
- ``actions``: ``do_*``, the writes under the locks; the SLA scan calls these as the system;
- ``engine``: the steps the actions share (activate a stage, settle a task, close a request);
- ``events``: domain events and ``EVENT_MAP`` (audit action, notification kind and text);
- ``resubmit``: where a resubmitted request starts again;
- ``services``: the public transitions the API calls (lock, check, do, flush).

See docs/architecture.md.
"""

"""Demo workflows of DESIGN §5 (filled in by the workflow-definitions issue)."""


def seed_workflows(*, organization, actor) -> list[str]:
    return []

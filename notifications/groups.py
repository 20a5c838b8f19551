"""Channel-layer group names: one group per user, joined by their sockets, pushed to by the services."""


def group_for(user_id) -> str:
    return f"user.{user_id}"

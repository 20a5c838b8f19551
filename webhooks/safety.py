"""Where a webhook may go: https in production, never a private, loopback or link-local address
unless the operator lists it in ``WEBHOOK_ALLOWED_PRIVATE_NETWORKS`` (hosts or CIDRs).

The check runs when an endpoint is saved and again before every attempt, on the addresses the
name resolves to then; the request goes to the address that was checked (the name still sets
``Host`` and TLS SNI), so a DNS answer that changes in between cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from core.exceptions import ValidationFailed


class UnsafeDestination(Exception):
    pass


def _allowed_networks() -> tuple[set[str], list[ipaddress._BaseNetwork]]:
    hosts, networks = set(), []
    for item in settings.WEBHOOK_ALLOWED_PRIVATE_NETWORKS:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            hosts.add(item.lower())
    return hosts, networks


def _is_public(address: ipaddress._BaseAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not (address.is_multicast or address.is_reserved)


def check_url(url: str) -> None:
    """The URL's form (no address lookup): refuse with a clear 400."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationFailed(details={"url": ["An http(s) URL with a host name."]})
    if parts.scheme != "https" and settings.WEBHOOK_REQUIRE_HTTPS:
        raise ValidationFailed(details={"url": ["Webhook URLs must use https."]})
    if parts.username or parts.password:
        raise ValidationFailed(
            details={"url": ["Credentials in the URL are not allowed; the signature authenticates."]}
        )
    try:
        resolve(url)
    except UnsafeDestination as exc:
        raise ValidationFailed(details={"url": [str(exc)]}) from None


def resolve(url: str) -> str:
    """The address to connect to: the first one the host resolves to, after every one was checked."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    allowed_hosts, allowed_networks = _allowed_networks()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeDestination(f"The host {host!r} does not resolve.") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise UnsafeDestination(f"The host {host!r} does not resolve.")
    for address in addresses:
        if _is_public(address) or host in allowed_hosts or any(address in net for net in allowed_networks):
            continue
        raise UnsafeDestination(
            f"{host} resolves to {address}, a private, loopback or link-local address "
            "(allowed only when listed in WEBHOOK_ALLOWED_PRIVATE_NETWORKS)."
        )
    return str(addresses[0])

"""Source-IP allowlist that stays correct behind nginx.

The address in ``X-Forwarded-For``/``X-Real-IP`` is believed only when the direct peer is a configured
trusted proxy; anyone else's header is ignored, so it cannot be spoofed past the allowlist. A proxy may
append its own ``X-Forwarded-For`` line instead of extending the client's (HAProxy's ``option forwardfor``):
every line counts, in order, as one comma-separated list (RFC 9110 5.3), so the client's line is never the
only one read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from greenq.ingress.errors import Forbidden

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(text: str | None) -> IPAddress | None:
    """The address in ``text`` (IPv4-mapped IPv6 folded to IPv4), or None when it is not an address."""
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def join_header_lines(values: Sequence[str]) -> str | None:
    """All lines of one header as the single comma-separated value they mean (None when absent)."""
    if not values:
        return None
    return values[0] if len(values) == 1 else ", ".join(values)


class ClientAddressPolicy:
    """Resolves the real client address and checks it against the allowlist."""

    def __init__(self, allowed: Sequence[IPNetwork], trusted_proxies: Sequence[IPNetwork]) -> None:
        self._allowed = tuple(allowed)
        self._trusted = tuple(trusted_proxies)

    @property
    def enabled(self) -> bool:
        return bool(self._allowed)

    def client_address(
        self, peer: str | None, forwarded_for: str | None, real_ip: str | None
    ) -> IPAddress | None:
        """The client as seen by the first untrusted hop (walking ``X-Forwarded-For`` from the right)."""
        peer_ip = parse_ip(peer)
        if peer_ip is None or not self._is_trusted(peer_ip):
            return peer_ip
        if forwarded_for:
            hops = [parse_ip(hop) for hop in forwarded_for.split(",")]
            for hop in reversed(hops):
                if hop is None:
                    return None  # garbage in the chain: refuse rather than guess
                if not self._is_trusted(hop):
                    return hop
            return hops[0]
        if real_ip:
            return parse_ip(real_ip)
        return peer_ip

    def check(self, peer: str | None, forwarded_for: str | None, real_ip: str | None) -> IPAddress | None:
        """The client address (None without an allowlist); raises :class:`Forbidden` when it is outside."""
        if not self._allowed:
            return None  # no allowlist: the address is not needed, so do not spend time parsing it
        client = self.client_address(peer, forwarded_for, real_ip)
        if client is None or not any(client in network for network in self._allowed):
            raise Forbidden(f"source address {client} is not allowed")
        return client

    def _is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self._trusted)

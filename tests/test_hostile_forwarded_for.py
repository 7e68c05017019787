"""Spoofed forwarded addresses: from an untrusted peer, or as a prefix behind the trusted proxy, no
``X-Forwarded-For``/``X-Real-IP`` ever passes the allowlist (the address policy alone, and through the
app)."""

from __future__ import annotations

from ipaddress import ip_network
from typing import Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis import Redis
from rq import Queue

from greenq.core.settings import IngressSettings
from greenq.ingress.client_ip import ClientAddressPolicy, IPNetwork
from greenq.ingress.errors import Forbidden
from tests.support.hostile import AUTH, FEW, FUZZ, make_probe

pytestmark = pytest.mark.usefixtures("hostile_tally")  # GREENQ_HOSTILE_TALLY: the per-class counts

ALLOWED_NETS: Final[list[IPNetwork]] = [ip_network("51.250.84.44"), ip_network("203.0.113.0/24")]
PROXY: Final = "10.0.0.2"
TRUSTED_NETS: Final[list[IPNetwork]] = [ip_network(PROXY)]
POLICY: Final = ClientAddressPolicy(ALLOWED_NETS, TRUSTED_NETS)
hop_text = st.one_of(
    st.sampled_from(
        ["51.250.84.44", "203.0.113.7", PROXY, "::ffff:51.250.84.44", "unknown", "", " ", "51.250.84.44:443"]
    ),
    st.ip_addresses().map(str),
    st.text(max_size=15),
)
chains = st.one_of(
    st.lists(hop_text, max_size=8).map(", ".join), st.lists(hop_text, max_size=8).map(",".join), st.text()
)


def outsider(address: str) -> bool:
    parsed = POLICY.client_address(address, None, None)
    return parsed is not None and not any(parsed in net for net in [*ALLOWED_NETS, *TRUSTED_NETS])


outsiders = st.ip_addresses().map(str).filter(outsider)


@settings(FUZZ, max_examples=500)
@given(peer=outsiders, forwarded_for=st.none() | chains, real_ip=st.none() | hop_text)
def test_forwarded_headers_from_an_untrusted_peer_never_pass_the_allowlist(
    peer: str, forwarded_for: str | None, real_ip: str | None
) -> None:
    with pytest.raises(Forbidden):
        POLICY.check(peer, forwarded_for, real_ip)


@settings(FUZZ, max_examples=500)
@given(spoofed=st.lists(hop_text, max_size=5), client=outsiders, proxies=st.integers(0, 3))
def test_a_spoofed_prefix_behind_the_trusted_proxy_never_passes(
    spoofed: list[str], client: str, proxies: int
) -> None:
    chain = ", ".join([*spoofed, client, *[PROXY] * proxies])

    with pytest.raises(Forbidden):
        POLICY.check(PROXY, chain, "51.250.84.44")


def header_safe(text: str) -> bool:
    return not set(text) & {"\r", "\n", "\x00"}


@FEW
@given(forwarded_for=chains.filter(header_safe), real_ip=st.none() | hop_text.filter(header_safe))
def test_spoofed_forwarded_for_through_the_app_is_403_and_stores_nothing(
    ingress_settings: IngressSettings,
    redis_conn: Redis,
    queue: Queue,
    forwarded_for: str,
    real_ip: str | None,
) -> None:
    settings_ = ingress_settings.model_copy(
        update={"allowed_ips": ALLOWED_NETS, "trusted_proxies": TRUSTED_NETS}
    )
    client, prober = make_probe(settings_, redis_conn, queue, peer="198.51.100.9")
    headers: list[tuple[str, str | bytes]] = [*AUTH, ("X-Forwarded-For", forwarded_for.encode())]
    if real_ip is not None:
        headers.append(("X-Real-IP", real_ip.encode()))
    with client:
        assert prober.send("spoofed X-Forwarded-For", headers=headers) == 403

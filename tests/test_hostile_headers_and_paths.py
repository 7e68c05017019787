"""Hostile headers, methods and paths against the ingress, in process: a wrong, repeated or missing token
is 401, absurd headers change nothing, a wrong method is 405, any other path 404 (never a redirect)."""

from __future__ import annotations

import string
from typing import Final

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from greenq.core.settings import OVER_CAP_PATH
from tests.conftest import OTHER_TOKEN, TOKEN
from tests.support.hostile import AUTH, FEW, FUZZ, SAMPLE, WEBHOOK, Probe

pytestmark = pytest.mark.usefixtures("hostile_tally")  # GREENQ_HOSTILE_TALLY: the per-class counts

VALID_AUTH: Final = frozenset(
    {TOKEN, OTHER_TOKEN, f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BASIC {OTHER_TOKEN}", f"  {TOKEN}  "}
)
KNOWN_PATHS: Final = frozenset(
    {"", "/healthz", "/readyz", "/metrics", "/openapi.json", WEBHOOK.rstrip("/"), OVER_CAP_PATH}
)


header_junk = st.binary(max_size=300).filter(lambda value: not set(value) & {0, 10, 13})
authorization_values = st.one_of(st.sampled_from(sorted(VALID_AUTH)).map(str.encode), header_junk)


@FUZZ
@given(values=st.lists(authorization_values, max_size=3))
def test_authorization_header_missing_repeated_or_wrong_is_401(
    small_probe: Probe, values: list[bytes]
) -> None:
    headers = [("Authorization", value) for value in values]

    status = small_probe.send("authorization", headers=headers)

    single_valid = len(values) == 1 and values[0].decode("latin-1") in VALID_AUTH
    assert status == (200 if single_valid else 401)


header_names = st.sampled_from(
    ["x-fuzz", "x-forwarded-for", "x-real-ip", "forwarded", "content-type", "user-agent", "cookie", "accept"]
)
header_values = st.one_of(header_junk, st.sampled_from([b"a" * 65_536, "é€😀".encode(), b"\xff" * 1000]))


@FEW
@given(extra=st.lists(st.tuples(header_names, header_values), max_size=40), filler=st.integers(0, 400))
def test_absurd_headers_do_not_change_the_answer(
    small_probe: Probe, extra: list[tuple[str, bytes]], filler: int
) -> None:
    headers: list[tuple[str, str | bytes]] = [*AUTH, *extra, *((f"x-filler-{i}", "v") for i in range(filler))]

    assert small_probe.send("absurd headers", headers=headers) == 200


# --- methods and paths ----------------------------------------------------------------------------------


@FEW
@given(method=st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]), with_auth=st.booleans())
def test_wrong_methods_on_the_webhook_are_405(small_probe: Probe, method: str, with_auth: bool) -> None:
    assert small_probe.send("wrong method", method=method, headers=AUTH if with_auth else ()) == 405


path_text = st.text(alphabet=string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/", max_size=40)


@FUZZ
@given(path=path_text, method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
def test_unknown_paths_are_404(small_probe: Probe, path: str, method: str) -> None:
    full = "/" + path
    assume(full.rstrip("/") not in KNOWN_PATHS)
    assume(not {".", ".."} & set(full.split("/")))  # dot segments are resolved by the client
    assume(not full.startswith("//"))  # the client would read "//x" as a host, not a path

    assert small_probe.send("unknown path", method=method, path=full) == 404


@pytest.mark.parametrize("path", ["/green-api/webhook", "/healthz/", "/metrics/"])
def test_near_miss_paths_are_404_not_redirects(probe: Probe, path: str) -> None:
    response = probe.client.post(
        path, content=SAMPLE, headers={"Authorization": TOKEN, "Host": "evil.example"}
    )

    assert response.status_code == 404, response.headers.get("location")

"""The base of greenq's GREEN API clients: one instance's URLs, timeouts and status handling, getSettings and
the journals. ``greenq.pull.api`` adds receiving; ``greenq.sender.api`` adds sending.

Built on one shared ``httpx2.AsyncClient``. Every failure becomes an :mod:`greenq.core.greenapi.errors`
class whose message names the instance and method; URLs (which carry the token) never leave this module.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx2
import orjson

from greenq.core.greenapi.errors import (
    AuthRefused,
    BadResponse,
    ConnectionFailed,
    RateLimited,
    RequestTimedOut,
    ServerError,
)
from greenq.core.greenapi.masking import redact
from greenq.core.settings import InstanceConfig

Direction = Literal["incoming", "outgoing"]

#: The journal method for each direction.
JOURNAL_METHODS: dict[Direction, str] = {
    "incoming": "lastIncomingMessages",
    "outgoing": "lastOutgoingMessages",
}

#: Statuses meaning "this instance's id, token or URL is wrong" (GREEN API: 401 token, 403 idInstance).
AUTH_STATUSES = frozenset({401, 403, 404})

#: Failures that happen before the request is written: GREEN API cannot have seen it.
_NOT_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)


class GreenApiBase:
    """Calls one instance's API methods; ``request_timeout`` bounds each call."""

    def __init__(self, http: httpx2.AsyncClient, instance: InstanceConfig, request_timeout: float) -> None:
        self._http = http
        self._instance = instance
        self._timeout = request_timeout

    @property
    def instance(self) -> InstanceConfig:
        return self._instance

    async def get_settings(self) -> dict[str, Any]:
        """The instance's settings as getSettings returns them (tokens included: mask before showing)."""
        response = await self._call("GET", "getSettings")
        data = self._json(response.content, "getSettings")
        if not isinstance(data, dict):
            raise BadResponse(f"{self._what('getSettings')} did not answer with an object")
        return data

    async def journal(self, direction: Direction, minutes: int) -> list[dict[str, Any]]:
        """lastIncomingMessages or lastOutgoingMessages: the journal's messages of the last ``minutes``."""
        api_method = JOURNAL_METHODS[direction]
        response = await self._call("GET", api_method, params={"minutes": minutes})
        return self._entries(response.content, api_method)

    def _entries(self, content: bytes, api_method: str) -> list[dict[str, Any]]:
        data = self._json(content, api_method)
        if not isinstance(data, list) or not all(isinstance(entry, dict) for entry in data):
            raise BadResponse(f"{self._what(api_method)} did not answer with an array of objects")
        return data

    async def _call(self, method: str, api_method: str, *extra: str, **options: Any) -> httpx2.Response:
        url = "/".join(
            (
                self._instance.api_url,
                f"waInstance{self._instance.id_instance}",
                api_method,
                self._instance.api_token.get_secret_value(),
                *extra,
            )
        )
        options.setdefault("timeout", self._timeout)
        what = self._what(api_method)
        try:
            response = await self._http.request(method, url, **options)
        except httpx2.TimeoutException as error:
            sent = not isinstance(error, _NOT_SENT)
            raise RequestTimedOut(f"{what} timed out ({type(error).__name__})", maybe_sent=sent) from None
        except httpx2.TransportError as error:
            sent = not isinstance(error, _NOT_SENT)
            raise ConnectionFailed(f"{what} failed: {self._clean(error)}", maybe_sent=sent) from None
        except httpx2.RequestError as error:  # e.g. an undecodable body: the answer, not the link, is bad
            raise BadResponse(f"{what} failed: {self._clean(error)}") from None
        return self._check(response, what)

    def _check(self, response: httpx2.Response, what: str) -> httpx2.Response:
        status = response.status_code
        if status == 200:
            return response
        if status in AUTH_STATUSES:
            raise AuthRefused(f"{what} refused with HTTP {status}", status)
        if status == 429:
            raise RateLimited(f"{what} rate limited (HTTP 429)", _retry_after(response))
        if status >= 500:
            raise ServerError(f"{what} answered HTTP {status}", status)
        raise BadResponse(f"{what} answered HTTP {status}", status)

    def _json(self, content: bytes, api_method: str) -> Any:
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            raise BadResponse(f"{self._what(api_method)} answered with a body that is not JSON") from None

    def _what(self, api_method: str) -> str:
        return f"{api_method} of instance {self._instance.name!r}"

    def _clean(self, error: Exception) -> str:
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        return redact(text, [self._instance.api_token.get_secret_value()])


def _retry_after(response: httpx2.Response) -> float | None:
    """Seconds from a numeric ``Retry-After`` header, if any."""
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None

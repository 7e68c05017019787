"""Webhook token check: the ``Authorization`` header carries the instance's ``webhookUrlToken``.

GREEN API sends the configured value as is; users often configure ``Bearer x`` or ``Basic x``, so the bare
value and the value without that prefix are both accepted. Every configured token is compared, always, in
constant time, so timing reveals neither which token nor how much of it matched.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from typing import Final

from pydantic import SecretStr

from greenq.ingress.errors import Unauthorized

_PREFIXES: Final = ("bearer ", "basic ")


class TokenAuthenticator:
    """Maps an ``Authorization`` header to the *name* of the token it carries."""

    def __init__(self, tokens: Mapping[str, SecretStr], allow_unauthenticated: bool = False) -> None:
        self._tokens = [(name, secret.get_secret_value().encode()) for name, secret in tokens.items()]
        self._open = allow_unauthenticated and not self._tokens

    @property
    def is_open(self) -> bool:
        """True when no token is configured and unauthenticated requests were explicitly allowed."""
        return self._open

    def authenticate(self, headers: Sequence[str]) -> str | None:
        """Token name for the request's Authorization header values; raises :class:`Unauthorized`."""
        if self._open:
            return None
        if not headers:
            raise Unauthorized("missing Authorization header")
        if len(headers) > 1:
            raise Unauthorized("more than one Authorization header")
        candidates = _candidates(headers[0])
        matched: str | None = None
        for name, token in self._tokens:
            for candidate in candidates:
                # Non-short-circuit: every token is compared even after a match.
                if hmac.compare_digest(candidate, token) and matched is None:
                    matched = name
        if matched is None:
            raise Unauthorized("invalid token")
        return matched


def _candidates(header: str) -> tuple[bytes, ...]:
    value = header.strip()
    lowered = value[:7].lower()
    for prefix in _PREFIXES:
        if lowered.startswith(prefix):
            return (value.encode(), value[len(prefix) :].strip().encode())
    return (value.encode(),)

"""Keeping apiTokenInstance and webhookUrlToken out of everything greenq prints or logs.

GREEN API puts the instance token in the URL path, so any URL may carry it: URLs are masked before they
are logged, and a logging filter redacts known tokens from every record as a last line of defence.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from greenq.core.logs import FIELDS_ATTR

MASK: Final = "***"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each (non-empty) secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def mask_url(url: str) -> str:
    """A URL safe to show: a password in it is masked (``https://user:***@host/...``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def mask_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """getSettings output safe to print: every ``*token*`` value masked, passwords in URLs masked."""
    shown: dict[str, Any] = {}
    for key, value in settings.items():
        if "token" in key.lower() and isinstance(value, str) and value:
            shown[key] = MASK
        elif isinstance(value, str) and "://" in value:
            shown[key] = mask_url(value)
        else:
            shown[key] = value
    return shown


class RedactingFilter(logging.Filter):
    """Rewrites records so no configured secret reaches a handler, whoever logged it."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = tuple(secret for secret in secrets if secret)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self._secrets)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
            record.exc_info = None
        fields = getattr(record, FIELDS_ATTR, None)
        if isinstance(fields, dict):
            setattr(record, FIELDS_ATTR, {key: self._clean(value) for key, value in fields.items()})
        return True

    def _clean(self, value: object) -> object:
        return redact(value, self._secrets) if isinstance(value, str) else value

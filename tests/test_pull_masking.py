"""greenq.core.greenapi.masking: instance settings and URLs shown with their secrets masked, and the log
filter that removes tokens from messages, structured fields and tracebacks."""

from __future__ import annotations

import logging

from greenq.core.greenapi.masking import RedactingFilter, mask_settings, mask_url
from greenq.core.logs import FIELDS_ATTR


def test_settings_and_urls_are_masked_for_display() -> None:
    shown = mask_settings(
        {"webhookUrl": "https://user:pw@hooks.example/x", "webhookUrlToken": "abc", "incomingWebhook": "yes"}
    )

    assert shown == {
        "webhookUrl": "https://user:***@hooks.example/x",
        "webhookUrlToken": "***",
        "incomingWebhook": "yes",
    }
    assert mask_url("https://hooks.example/x") == "https://hooks.example/x"
    assert mask_settings({"webhookUrlToken": ""}) == {"webhookUrlToken": ""}


def test_redacting_filter_removes_secrets_from_messages_fields_and_tracebacks() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "GET /waInstance1/m/%s", ("tok-123",), None)
    record.__dict__[FIELDS_ATTR] = {"url": "http://h/tok-123", "n": 1}
    try:
        raise RuntimeError("boom tok-123")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()

    RedactingFilter(["tok-123"]).filter(record)

    assert record.getMessage() == "GET /waInstance1/m/***"
    assert record.__dict__[FIELDS_ATTR] == {"url": "http://h/***", "n": 1}
    assert record.exc_text is not None
    assert "tok-123" not in record.exc_text
    assert "boom ***" in record.exc_text

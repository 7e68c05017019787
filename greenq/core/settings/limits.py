"""Body-size limits shared by the ingress, nginx rendering and ``greenq up``."""

from __future__ import annotations

#: Processing limit. The largest documented notification is 1,388 bytes (tests/samples); the largest a
#: WhatsApp message can produce (65,536 characters, each escaped as 6 bytes, quoted once more, plus
#: thumbnails) stays under 1 MiB. Bodies above it are stored and dead-lettered ``too_large``, not parsed.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
#: Hard cap, enforced by nginx and the ingress: bodies above it are refused (413), counted and alerted.
DEFAULT_BODY_CAP_BYTES = 16 * 1024 * 1024
#: Where nginx forwards (without the body) a webhook it refused for being over the hard cap, so the ingress
#: checks its token, logs and counts the refusal like any other; nginx exposes the path nowhere else.
OVER_CAP_PATH = "/internal/over-cap"

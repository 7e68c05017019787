"""uvicorn entry point: every ingress process builds its own settings and app at start-up."""

from __future__ import annotations

from greenq.core.logs import configure_logging
from greenq.core.settings import IngressSettings
from greenq.ingress.app import IngressApp, create_app


def app_factory() -> IngressApp:
    """``uvicorn --factory greenq.ingress.asgi:app_factory``; settings come from GREENQ_* variables."""
    settings = IngressSettings()
    configure_logging(settings.log_level)
    return create_app(settings)

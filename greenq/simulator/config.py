"""The simulator's start-up options (from ``greenq simulator``'s command line, or a test)."""

from __future__ import annotations

from dataclasses import dataclass, field

#: GREEN API's documented pause before resending a notification the webhook did not accept.
DOCUMENTED_WEBHOOK_PAUSE = 60.0
#: GREEN API's documented wait for a webhook response.
DOCUMENTED_WEBHOOK_TIMEOUT = 180.0


@dataclass(frozen=True)
class SimulatorConfig:
    """Instances (idInstance -> apiTokenInstance), where to listen, and push-delivery timing."""

    instances: dict[int, str]
    host: str = "127.0.0.1"
    port: int = 8090
    webhook_timeout: float = DOCUMENTED_WEBHOOK_TIMEOUT
    webhook_pause: float = DOCUMENTED_WEBHOOK_PAUSE
    #: Calls per second each journal method answers before 429 (0 = unlimited).
    journal_rate: int = 0
    #: Seconds before a message shows in the journal (GREEN API: up to 120).
    journal_lag: float = 0.0
    #: Calls per second each send method answers per instance before 429 (0 = unlimited).
    send_rate: int = 0
    #: Milliseconds between two sent messages, overriding every instance's delaySendMessagesMilliseconds
    #: (GREEN API's minimum is 500; tests use a few ms). None = the setting.
    send_delay_ms: int | None = None
    #: Chat ids every send to fails: status noAccount (@c.us) or failed (@g.us), nothing journaled.
    failing_chats: frozenset[str] = field(default_factory=frozenset)


def parse_instance_tokens(text: str) -> dict[int, str]:
    """``1101000001=token1,1101000002=token2`` as a mapping; raises ValueError naming the bad item."""
    instances: dict[int, str] = {}
    for position, item in enumerate(filter(None, (part.strip() for part in text.split(","))), start=1):
        id_text, sep, token = item.partition("=")
        if not sep or not id_text.strip().isdigit() or not token.strip() or "/" in token:
            raise ValueError(f"instance {position} must be idInstance=apiTokenInstance")
        instances[int(id_text)] = token.strip()
    if not instances:
        raise ValueError("at least one instance (idInstance=apiTokenInstance) is needed")
    return instances

"""``greenq up --simulator``: a simulated GREEN API instance wired to the local pipeline, for bots and demos.

Starts ``greenq simulator`` with one instance, points the instance's webhook at the pipeline (its token,
incoming, outgoing and status notifications on), and starts ``greenq send`` for it, so a bot's replies go out
through the simulator and their notifications come back in. The simulator is configured through GREEN API's
own ``setSettings`` call, as a real instance would be: this module knows the protocol, not the simulator's
code.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

import httpx2

from greenq.local.procs import free_port

#: The simulated instance's idInstance (any number works; this one is recognisable in logs).
SIMULATED_INSTANCE: Final = 1101000001

#: The simulated instance's settings besides its webhook: every notification of messages both ways and of
#: send statuses, and GREEN API's shortest pause between sent messages (the sender paces itself by it).
INSTANCE_SETTINGS: Final = {
    "delaySendMessagesMilliseconds": 500,
    "incomingWebhook": "yes",
    "outgoingWebhook": "yes",
    "outgoingAPIMessageWebhook": "yes",
    "outgoingMessageWebhook": "yes",
}


@dataclass(frozen=True)
class SimulatedInstance:
    """Where the simulator listens and the instance's API token (a fresh secret per run)."""

    port: int
    token: str
    id_instance: int = SIMULATED_INSTANCE

    @classmethod
    def fresh(cls) -> SimulatedInstance:
        return cls(free_port(), secrets.token_hex(16))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def simulator_args(self) -> list[str]:
        """``greenq`` arguments that run the simulator for this instance (GREEN API's webhook timing)."""
        return ["simulator", "--port", str(self.port), "--instances", f"{self.id_instance}={self.token}"]

    def sender_instances(self) -> str:
        """``GREENQ_INSTANCES`` for ``greenq send`` (and ``greenq poll``): this instance's API."""
        return f"simulated={self.url}|{self.id_instance}|{self.token}"

    def point_webhook_at(self, webhook_url: str, webhook_token: str) -> None:
        """setSettings: push every notification to ``webhook_url`` with ``Authorization: Bearer <token>``, and
        send at GREEN API's fastest pace."""
        settings = {
            "webhookUrl": webhook_url,
            "webhookUrlToken": f"Bearer {webhook_token}",
            **INSTANCE_SETTINGS,
        }
        url = f"{self.url}/waInstance{self.id_instance}/setSettings/{self.token}"
        with httpx2.Client(trust_env=False, timeout=10) as http:
            http.post(url, json=settings).raise_for_status()

    def chat_command(self, python: str) -> str:
        """The command that opens a chat with the bot from a terminal."""
        return f"{python} -m examples.chat --simulator {self.url} --instance {self.id_instance}"

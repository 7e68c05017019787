"""``greenq instance show|configure``: read and change an instance's notification settings.

Push mode sets ``webhookUrl`` and a fresh ``webhookUrlToken`` (also written to the ingress's GREENQ_TOKENS);
pull mode clears ``webhookUrl``, which GREEN API requires for receiveNotification. Tokens are never printed.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TextIO

from greenq.core.greenapi.masking import mask_settings
from greenq.core.protocol import NOTIFICATION_SWITCHES
from greenq.pull.api import GreenApiClient
from greenq.pull.envfile import set_ingress_token
from greenq.pull.errors import SettingsNotSaved

SWITCHES: Final = NOTIFICATION_SWITCHES

APPLY_WARNING: Final = (
    "warning: GREEN API applies new settings within about 5 minutes, and setSettings reboots the instance."
)


@dataclass(frozen=True)
class ConfigurePlan:
    """What ``instance configure`` should change."""

    mode: Literal["push", "pull"]
    webhook_url: str = ""
    enable: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()
    env_file: Path = field(default_factory=lambda: Path(".env"))

    def request(self, webhook_token: str) -> dict[str, Any]:
        """The setSettings body; ``webhook_token`` is used in push mode only."""
        values: dict[str, Any] = dict.fromkeys(self.enable, "yes")
        values.update(dict.fromkeys(self.disable, "no"))
        if self.mode == "push":
            values.update(webhookUrl=self.webhook_url, webhookUrlToken=webhook_token)
        else:
            values["webhookUrl"] = ""
        return values


def parse_switches(text: str) -> tuple[str, ...]:
    """``a,b`` as switch names, refusing any GREEN API does not document (a typo would be ignored)."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in SWITCHES]
    if unknown:
        raise ValueError(
            f"unknown notification switch(es) {', '.join(unknown)}; known: {', '.join(SWITCHES)}"
        )
    return names


async def show(api: GreenApiClient, out: TextIO) -> None:
    """Print the instance's settings with every token masked."""
    settings = await api.get_settings()
    out.write(json.dumps(mask_settings(settings), indent=2, ensure_ascii=False) + "\n")


async def configure(api: GreenApiClient, plan: ConfigurePlan, out: TextIO) -> None:
    """Apply ``plan``; in push mode the new token goes to the env file first, then to GREEN API."""
    name = api.instance.name
    token = secrets.token_urlsafe(32) if plan.mode == "push" else ""
    if plan.mode == "push":
        # The ingress must know the token before GREEN API starts sending it; a token GREEN API never got
        # is harmless, a token the ingress never got would bounce every delivery.
        set_ingress_token(plan.env_file, name, token)
        out.write(f"webhookUrlToken written to GREENQ_TOKENS in {plan.env_file} as {name!r} (mode 0600)\n")
    values = plan.request(token)
    if not await api.set_settings(values):
        raise SettingsNotSaved(f"setSettings of instance {name!r} did not answer saveSettings=true")
    shown = mask_settings(values)
    out.write(f"instance {name!r}: saved {json.dumps(shown, ensure_ascii=False)}\n")
    if plan.mode == "push":
        out.write("restart the ingress so it loads the new token.\n")
    else:
        out.write("pull mode: run `greenq poll` with this instance in GREENQ_INSTANCES.\n")
    out.write(APPLY_WARNING + "\n")

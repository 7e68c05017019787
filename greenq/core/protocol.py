"""Facts of GREEN API's protocol that more than one part of greenq needs."""

from __future__ import annotations

from typing import Final

#: Notification switches of getSettings/setSettings ("yes"/"no"), from GREEN API's SetSettings documentation.
NOTIFICATION_SWITCHES: Final = (
    "incomingWebhook",
    "outgoingWebhook",
    "outgoingMessageWebhook",
    "outgoingAPIMessageWebhook",
    "stateWebhook",
    "deviceWebhook",
    "statusInstanceWebhook",
    "incomingCallWebhook",
    "pollMessageWebhook",
    "editedMessageWebhook",
    "deletedMessageWebhook",
    "incomingBlockWebhook",
)

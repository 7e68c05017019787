"""Did an ambiguous call reach GREEN API? Looking for the message in its queue and its journal.

A message is in showMessagesQueue from the moment GREEN API accepts it until it is sent, then in
lastOutgoingMessages, which may show it up to ``journal_lag`` later. So once the queue has been seen
without it, the journal must be read again ``journal_lag`` after that before concluding the call never
arrived; only then may the sender call again. An idMessage already recorded for another entry is never taken.
"""

from __future__ import annotations

import math
import time
from typing import Final

from greenq.core.outbox import OutboxEntry
from greenq.sender.api import SendingApi
from greenq.sender.ledger import Ledger
from greenq.sender.matching import journaled_ids, queued_ids

#: lastOutgoingMessages' longest useful window (a day; GREEN API keeps messages as long).
MAX_JOURNAL_MINUTES: Final = 1440


async def in_queue(api: SendingApi, ledger: Ledger, entry: OutboxEntry) -> str | None:
    """The idMessage of this entry's call waiting in GREEN API's queue, if it is there."""
    return await _first_free(ledger, entry, queued_ids(entry, await api.messages_queue()))


async def in_journal(api: SendingApi, ledger: Ledger, entry: OutboxEntry, since: float) -> str | None:
    """The idMessage of this entry's message in lastOutgoingMessages (sent from ``since`` on), if there."""
    minutes = min(MAX_JOURNAL_MINUTES, math.ceil(max(0.0, time.time() - since) / 60) + 1)
    journal = await api.journal("outgoing", minutes)
    return await _first_free(ledger, entry, journaled_ids(entry, journal, since))


async def _first_free(ledger: Ledger, entry: OutboxEntry, candidates: list[str]) -> str | None:
    for id_message in candidates:
        owner = await ledger.attributed_to(id_message)
        if owner is None or owner == entry.id:
            return id_message
    return None

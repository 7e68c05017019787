"""A small client of the simulator's control API, for tests and demos."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx2
import orjson

from greenq.simulator.faults import FaultKind


class SimulatorControl:
    """Fills queues, reads counters and injects faults on a simulator at ``base_url``."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._http = httpx2.Client(base_url=base_url, timeout=timeout, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def add(self, id_instance: int, notifications: Iterable[dict[str, Any] | bytes]) -> list[int]:
        """Queue notifications in order (bytes are sent one by one, unchanged); their receipt ids."""
        items = list(notifications)
        receipts: list[int] = []
        if all(isinstance(item, dict) for item in items):
            if items:
                receipts.extend(self._post(id_instance, orjson.dumps(items))["receiptIds"])
            return receipts
        for item in items:
            body = item if isinstance(item, bytes) else orjson.dumps(item)
            receipts.extend(self._post(id_instance, body)["receiptIds"])
        return receipts

    def stats(self, id_instance: int) -> dict[str, Any]:
        response = self._http.get(f"/sim/instances/{id_instance}/stats")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def inject(
        self,
        id_instance: int,
        kind: FaultKind,
        count: int = 1,
        *,
        status: int = 500,
        seconds: float = 0.0,
        methods: Iterable[str] | None = None,
        every: int = 1,
    ) -> None:
        """The next ``count`` calls (of ``methods``, default all) fail, are delayed, are dropped (before
        processing) or lose their reply (``lose_reply``: after processing); for ``lose``, ``count``
        notifications (one in ``every``) are journaled but never delivered."""
        spec: dict[str, Any] = {
            "kind": kind,
            "count": count,
            "status": status,
            "seconds": seconds,
            "every": every,
        }
        if methods is not None:
            spec["methods"] = list(methods)
        response = self._http.post(f"/sim/instances/{id_instance}/faults", content=orjson.dumps(spec))
        response.raise_for_status()

    def set_journal_lag(self, id_instance: int, seconds: float) -> None:
        """Messages show in the journal ``seconds`` after they happen (already logged ones too)."""
        response = self._http.post(
            f"/sim/instances/{id_instance}/journal", content=orjson.dumps({"lag": seconds})
        )
        response.raise_for_status()

    def sent(self, id_instance: int) -> list[dict[str, Any]]:
        """Every message the instance's send loop sent, in order."""
        response = self._http.get(f"/sim/instances/{id_instance}/sent")
        response.raise_for_status()
        data: list[dict[str, Any]] = response.json()
        return data

    def incoming(self, id_instance: int, chat_id: str, text: str, **people: str) -> str:
        """Someone writes ``text`` in ``chat_id`` (``senderName``, and ``sender`` for a group, optional);
        the incoming message's idMessage."""
        spec = {"chatId": chat_id, "text": text, **people}
        response = self._http.post(f"/sim/instances/{id_instance}/incoming", content=orjson.dumps(spec))
        response.raise_for_status()
        return str(response.json()["idMessage"])

    def clear_faults(self, id_instance: int) -> None:
        self._http.delete(f"/sim/instances/{id_instance}/faults").raise_for_status()

    def _post(self, id_instance: int, body: bytes) -> dict[str, Any]:
        response = self._http.post(f"/sim/instances/{id_instance}/notifications", content=body)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

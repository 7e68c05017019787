"""Webhook deliveries under load, from a thread pool: every status counted, each idMessage answered 200 kept,
so a test can stop or kill something midway and then count what must have been processed."""

from __future__ import annotations

import threading

import httpx2 as httpx


class Deliveries:
    """POSTs (idMessage, body) items to one webhook URL through one thread-safe connection pool.

    With ``errors_as_status_0`` a request that fails at the transport level (the server went away) counts as
    status 0 instead of failing the delivery."""

    def __init__(self, url: str, token: str, connections: int, *, errors_as_status_0: bool = False) -> None:
        self.url = url
        self.token = token
        self.errors_as_status_0 = errors_as_status_0
        self.accepted: set[str] = set()
        self.statuses: dict[int, int] = {}
        self.client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=connections))
        self._lock = threading.Lock()
        self._answered = threading.Semaphore(0)

    def deliver(self, item: tuple[str, bytes]) -> None:
        id_message, body = item
        try:
            status = self.client.post(
                self.url, content=body, headers={"Authorization": self.token}
            ).status_code
        except httpx.HTTPError:
            if not self.errors_as_status_0:
                raise
            status = 0
        with self._lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 200:
                self.accepted.add(id_message)
        self._answered.release()

    def wait_for_answers(self, count: int) -> None:
        """Until ``count`` more deliveries have been answered (a minute at most for each)."""
        for _ in range(count):
            self._answered.acquire(timeout=60)

    def refused(self) -> dict[int, int]:
        """How many requests got each status other than 200."""
        return {status: count for status, count in self.statuses.items() if status != 200}

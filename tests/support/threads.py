"""Running calls at the same time in threads (e.g. two workers on one notification), errors collected."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence


def run_together(calls: Sequence[Callable[[], object]], timeout: float = 60) -> list[BaseException]:
    """Start every call in its own thread, wait for all; returns what they raised."""
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            call()
        except BaseException as error:  # reported to the caller
            errors.append(error)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return errors

"""Crash points for real processes: SIGKILL at a named checkpoint, chosen by the test through the environment.

``GREENQ_TEST_CRASH_AT=committed:1,handlers-ran:3`` makes the process (its whole process group, like a
container kill) die the 1st time it reaches ``committed`` and the 3rd time it reaches ``handlers-ran``
(names: :mod:`greenq.core.checkpoints`). With ``GREENQ_TEST_CRASH_ONCE=<path>`` the crash happens only if
``<path>`` does not exist yet (it is created just before dying), so a restarted process runs on cleanly.
Only test code calls :func:`install_from_env`; production processes never install a hook.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from greenq.core import checkpoints

CRASH_AT_ENV = "GREENQ_TEST_CRASH_AT"
CRASH_ONCE_ENV = "GREENQ_TEST_CRASH_ONCE"


def parse(spec: str) -> dict[str, int]:
    """``"committed:1,handlers-ran:3"`` -> ``{"committed": 1, "handlers-ran": 3}``."""
    plan: dict[str, int] = {}
    for part in filter(None, (piece.strip() for piece in spec.split(","))):
        name, _, nth = part.partition(":")
        plan[name] = int(nth or 1)
    return plan


def install_from_env() -> None:
    plan = parse(os.environ.get(CRASH_AT_ENV, ""))
    if not plan:
        return
    once = os.environ.get(CRASH_ONCE_ENV)
    reached: Counter[str] = Counter()

    def hook(name: str) -> None:
        reached[name] += 1
        if plan.get(name) != reached[name]:
            return
        if once is not None:
            marker = Path(once)
            if marker.exists():
                return
            marker.write_text(name)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    checkpoints.install(hook)


class SimulatedCrash(RuntimeError):
    """Raised at a checkpoint by :func:`crash_once_at`: the batch stops there, as if the worker died."""


@contextmanager
def crash_once_at(point: str) -> Iterator[list[str]]:
    """In this process, raise :class:`SimulatedCrash` the first time ``point`` is reached inside the block;
    yields the points crashed at (to assert the crash happened)."""
    crashed: list[str] = []

    def crash(name: str) -> None:
        if name == point and not crashed:
            crashed.append(name)
            raise SimulatedCrash(f"simulated crash at {name}")

    checkpoints.install(crash)
    try:
        yield crashed
    finally:
        checkpoints.install(None)

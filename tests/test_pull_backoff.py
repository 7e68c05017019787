"""greenq.core.backoff: the delay between retries doubles up to its cap, with jitter, and resets."""

from __future__ import annotations

from greenq.core.backoff import Backoff


def test_backoff_doubles_up_to_the_cap_with_jitter_and_resets() -> None:
    low = Backoff(1.0, 8.0, rng=lambda: 0.0)
    high = Backoff(1.0, 8.0, rng=lambda: 1.0)

    assert [low.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert [high.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    low.reset()
    assert low.next_delay() == 0.5

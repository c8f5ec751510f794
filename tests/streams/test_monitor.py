"""The monitor stage's checkpoint schedule: every interval, stretched for a large state."""

from __future__ import annotations

import time

from streams.monitor import Monitor
from streams.settings import Settings


def _monitor(**settings: float) -> Monitor:
    return Monitor(Settings(**settings), owner=None, writer=None, publish=None, consumer=lambda: None)  # type: ignore[arg-type]


def test_a_checkpoint_is_due_every_interval_while_checkpoints_are_cheap() -> None:
    monitor = _monitor(checkpoint_interval_s=1.0, checkpoint_max_share=0.1)
    monitor.checkpoint_took = 0.02
    monitor.last_checkpoint = time.monotonic() - 0.5
    assert not monitor._checkpoint_due()
    monitor.last_checkpoint = time.monotonic() - 1.01
    assert monitor._checkpoint_due()


def test_an_expensive_checkpoint_stretches_the_interval_to_its_share_of_the_time() -> None:
    monitor = _monitor(checkpoint_interval_s=1.0, checkpoint_max_share=0.1)
    monitor.checkpoint_took = 0.5  # a big state: at most 10% of the time means every 5 s
    monitor.last_checkpoint = time.monotonic() - 3.0
    assert not monitor._checkpoint_due()
    monitor.last_checkpoint = time.monotonic() - 5.01
    assert monitor._checkpoint_due()

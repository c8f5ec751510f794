"""River's ADWIN with a bounded replay buffer, so its window survives a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from river.drift import ADWIN


@dataclass
class ReplayableADWIN:
    """ADWIN (river) that also keeps its last ``replay`` inputs.

    River's ADWIN lives in compiled code whose buckets cannot be read back. A
    checkpoint stores the recent inputs instead, and a restore feeds the last
    ``min(width, replay)`` of them to a fresh ADWIN: the same window when it is
    short (right after a change), a shorter one when it is long. Inputs are kept
    as float32 offsets from the first input, which keeps them exact enough for
    features with a large mean and a small spread, at half the size.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(2)
    >>> detector = ReplayableADWIN()
    >>> for i in range(2000):
    ...     detector.update(rng.gauss(0 if i < 1000 else 1, 1))
    ...     if detector.drift_detected:
    ...         break
    >>> i
    1023
    """

    delta: float = 0.002
    replay: int = 512
    recent: np.ndarray = field(init=False)
    origin: float | None = None
    count: int = 0
    adwin: ADWIN = field(init=False)

    _checkpoint_exclude: ClassVar[tuple[str, ...]] = ("adwin",)

    def __post_init__(self) -> None:
        self.recent = np.zeros(self.replay, dtype=np.float32)
        self.adwin = ADWIN(delta=self.delta)

    def update(self, x: float) -> None:
        if self.origin is None:
            self.origin = x
        self.recent[self.count % self.replay] = x - self.origin
        self.count += 1
        self.adwin.update(x)

    @property
    def drift_detected(self) -> bool:
        return self.adwin.drift_detected

    @property
    def estimation(self) -> float:
        return self.adwin.estimation

    @property
    def width(self) -> float:
        return self.adwin.width

    def _after_restore(self) -> None:
        """Rebuild ADWIN from the replay buffer (called by the checkpoint codec)."""
        self.adwin = ADWIN(delta=self.delta)
        n = min(self.count, self.replay)
        order = np.roll(self.recent, -(self.count % self.replay))[self.replay - n:] if n else []
        for x in order:
            self.adwin.update(float(x) + (self.origin or 0.0))

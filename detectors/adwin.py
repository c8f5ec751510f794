"""River's ADWIN with a bounded replay buffer, so its window survives a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from river.drift import ADWIN


def _no_inputs() -> np.ndarray:
    return np.zeros(0, dtype=np.float32)


@dataclass
class ReplayableADWIN:
    """ADWIN (river) that also keeps its last ``replay`` inputs.

    River's ADWIN lives in compiled code whose buckets cannot be read back. A
    checkpoint stores the recent inputs instead, and a restore feeds the last
    ``min(width, replay)`` of them to a fresh ADWIN: the same window when it is
    short (right after a change), a shorter one when it is long. Inputs are kept
    as float32 offsets from the first input, which keeps them exact enough for
    features with a large mean and a small spread, at half the size. The live
    ADWIN is not a field: ``__post_init__`` rebuilds it from the buffer.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(2)
    >>> detector = ReplayableADWIN()
    >>> found = detector.update_many(np.array([rng.gauss(0 if i < 1000 else 1, 1) for i in range(2000)]))
    >>> int(np.flatnonzero(found)[0])
    1023
    """

    delta: float = 0.002
    replay: int = 512
    recent: np.ndarray = field(default_factory=_no_inputs)  # input - origin, value i in slot i % replay
    origin: float | None = None
    count: int = 0

    def __post_init__(self) -> None:
        self.adwin = ADWIN(delta=self.delta)
        n = min(self.count, self.replay)
        if n:
            order = np.roll(self.recent, -(self.count % self.replay))[self.replay - n :]
            for x in order.tolist():
                self.adwin.update(x + (self.origin or 0.0))

    def _after_restore(self) -> None:
        """Rebuild ADWIN after the old codec (``streams/checkpoint.py``), which does not call ``__post_init__``."""
        self.__post_init__()

    def update(self, x: float) -> None:
        self.update_many(np.array([x], dtype=np.float64))

    def update_many(self, xs: np.ndarray) -> np.ndarray:
        """Feed values in order; return whether ADWIN detected a change at each."""
        xs = np.asarray(xs, dtype=np.float64)
        k = len(xs)
        found = np.zeros(k, dtype=bool)
        if not k:
            return found
        if self.origin is None:
            self.origin = float(xs[0])
        if len(self.recent) != self.replay:
            self.recent = np.zeros(self.replay, dtype=np.float32)
        kept = xs[-self.replay :]
        slots = (self.count + k - len(kept) + np.arange(len(kept))) % self.replay
        self.recent[slots] = (kept - self.origin).astype(np.float32)
        self.count += k
        adwin = self.adwin
        for i, x in enumerate(xs.tolist()):
            adwin.update(x)
            if adwin.drift_detected:
                found[i] = True
        return found

    @property
    def drift_detected(self) -> bool:
        return self.adwin.drift_detected

    @property
    def estimation(self) -> float:
        return self.adwin.estimation

    @property
    def width(self) -> float:
        return self.adwin.width

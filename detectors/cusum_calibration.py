"""CUSUM thresholds for a false-alarm budget, counting the reference's own sampling error."""

from __future__ import annotations

import functools

import numpy as np

SKETCH_SAMPLES = 20_000  # past this many values a profile's 201-point sketch, not its sample, bounds its accuracy
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(15)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def run_length(drift: np.ndarray, h: float | np.ndarray, std: np.ndarray | float = 1.0) -> np.ndarray:
    """Siegmund's approximation of a one-sided CUSUM's average run length.

    ``drift`` is the mean of each increment ``z - k`` and ``std`` its standard
    deviation; the sum stops above ``h``. The overshoot correction is 0.583 std
    on each side, so the effective bound is ``h / std + 1.166``.

    >>> round(float(run_length(np.array([-0.5]), 4.0)[0]))  # k = 0.5 on N(0, 1): 4.0 gives about 336
    338
    """
    delta = np.asarray(drift, dtype=np.float64) / std
    b = np.asarray(h, dtype=np.float64) / std + 1.166
    tiny = np.abs(delta) < 1e-9
    safe = np.where(tiny, 1.0, delta)
    arl = (np.exp(np.minimum(-2 * safe * b, 700.0)) + 2 * safe * b - 1) / (2 * safe * safe)
    return np.where(tiny, b * b, arl)


def false_alarm_rate(k: float, h: float, sample_size: int) -> float:
    """Alarms per value of one one-sided CUSUM on N(0, 1) scores, averaged over the reference's error.

    A reference of ``n`` values shifts the scores' mean by about N(0, 1/n) and
    their std by about N(0, 1/(2n)); the rate is averaged over both (Gauss-Hermite,
    15 x 15 nodes). That average, not the rate at a perfect reference, is what
    a fleet of models with references of that size sees.

    >>> false_alarm_rate(0.25, 20.0, 1000) > false_alarm_rate(0.25, 20.0, 100_000)
    True
    """
    n = max(min(sample_size, SKETCH_SAMPLES), 2)
    bias = _NODES[:, None] / np.sqrt(n)
    std = 1.0 + _NODES[None, :] / np.sqrt(2.0 * n)
    rates = 1.0 / run_length(bias - k, h, np.maximum(std, 0.5))
    return float(_WEIGHTS @ rates @ _WEIGHTS)


def thresholds(k: np.ndarray, budget_events: float, sample_size: int) -> np.ndarray:
    """One threshold per ``k`` such that the two-sided bank raises one false alarm per ``budget_events`` values.

    The budget is split evenly over the ``2 * len(k)`` one-sided sums, and
    each threshold solves :func:`false_alarm_rate` by bisection (cached: the
    features of a model share their budget and reference size). A sum whose
    ``k`` is too small for the reference's own error (a 0.05 std ``k`` on 1,000
    values, at a strict budget) gets an infinite threshold: it never decides.

    >>> [round(float(h), 1) for h in thresholds(np.array([0.125, 0.25, 0.5]), 1e6, 10_000)]
    [48.8, 26.1, 13.8]
    """
    n = min(max(int(sample_size), 2), SKETCH_SAMPLES)
    return np.asarray(_thresholds(tuple(float(x) for x in np.asarray(k)), float(budget_events), n))


@functools.lru_cache(maxsize=256)
def _thresholds(k: tuple[float, ...], budget_events: float, sample_size: int) -> tuple[float, ...]:
    target = 1.0 / (max(budget_events, 1.0) * 2 * len(k))
    out = []
    for kk in k:
        lo, hi = 0.0, 5000.0
        if false_alarm_rate(kk, hi, sample_size) > target:  # the reference is too rough for so small a shift
            out.append(float("inf"))
            continue
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if false_alarm_rate(kk, mid, sample_size) > target else (lo, mid)
        out.append(hi)
    return tuple(out)

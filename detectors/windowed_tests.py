"""Windowed drift tests against a reference profile, with thresholds calibrated by simulation.

At large samples every per-feature test finds a negligible difference
significant, and a mean tracker (ADWIN) misses changes of spread or shape. Here
each feature is judged once per tumbling window against its reference profile
(:mod:`detectors.reference`) with several statistics (KS, PSI and Wasserstein-1
for numbers; chi-square and PSI for categories). An alert needs both a material
effect and a significance level that spends a false-alarm budget, which
:func:`calibrate` turns into thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.alerts import Evidence
from detectors.calibration import Calibration, calibrate
from detectors.reference import NumericProfile, ProfileBuilder, as_label, as_number, build_profile  # noqa: F401
from detectors.two_sample import (  # noqa: F401 (re-exported: the statistics live in two_sample)
    CAP, CATEGORICAL_TESTS, NUMERIC_TESTS, Profile, _categorical_rows, _cells, category_counts, chi_square,
    ks_statistic, psi, unseen_categories, wasserstein, window_statistics,
)

__all__ = [
    "Calibration", "WindowedDriftMonitor", "calibrate", "category_counts", "chi_square", "ks_statistic", "psi",
    "unseen_categories", "wasserstein", "window_statistics",
]


def _no_floats() -> np.ndarray:
    return np.zeros(0, dtype=np.float64)


def _no_ints() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass
class WindowedDriftMonitor:
    """Tumbling windows of one feature tested against its reference profile.

    Values fill a preallocated window of ``window`` values; each full window is
    tested once (KS, PSI, Wasserstein for a :class:`NumericProfile`; chi-square
    and PSI for a :class:`CategoricalProfile`). A window *hits* when some test
    crosses its calibrated threshold (significance: with ``n_features`` features
    and one threshold per test, a stationary model raises at most about one
    false alarm per ``budget_events`` events) and the effect is material (PSI >= ``min_psi``,
    KS >= ``min_ks`` or Wasserstein >= ``min_wasserstein`` reference std). The
    condition holds from the first hit until ``clear_after`` windows in a row
    do not hit. Without a profile, the first ``reference_size`` present values
    build one (:class:`ProfileBuilder`). ``None``, NaN and non-numbers (for a
    numeric profile) are skipped; the missing rate has its own monitor.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> monitor = WindowedDriftMonitor("age", build_profile(rng.normal(40, 6, 10_000)), n_features=20)
    >>> for i in range(6000):
    ...     monitor.update(rng.normal(40 if i < 3000 else 43, 6), float(i))  # 0.5 sigma shift at event 3000
    ...     if monitor.active:
    ...         break
    >>> i, monitor.evidence().detector
    (3499, 'windowed_psi')
    """

    name: str | None
    profile: Profile | None = None
    kind: str = "data_drift"
    window: int = 500
    n_features: int = 1
    budget_events: float = 1e6
    reference_size: int = 5000
    dtype: str | None = None  # "numeric" or "categorical" while building a profile; None: from the first value
    min_psi: float = 0.1
    min_ks: float = 0.1
    min_wasserstein: float = 0.1
    clear_after: int = 2
    draws: int = 2000
    seed: int = 0
    builder: ProfileBuilder | None = None
    calibration: Calibration | None = None
    buffer: np.ndarray = field(default_factory=_no_floats)
    counts: np.ndarray = field(default_factory=_no_ints)
    probs: np.ndarray = field(default_factory=_no_floats)
    cells: dict[str, int] = field(default_factory=dict)
    unseen: dict[str, int] = field(default_factory=dict)
    fill: int = 0
    n: int = 0
    missing: int = 0
    windows: int = 0
    active: bool = False
    clean: int = 0
    stats: dict[str, float] = field(default_factory=dict)
    score: float = 0.0
    start_ts: float = 0.0
    judged: tuple[float, float] = (0.0, 0.0)  # event times of the last tested window
    last_ts: float = 0.0

    def __post_init__(self) -> None:
        if self.profile is None and self.builder is None:
            self.builder = ProfileBuilder(size=self.reference_size, kind=self.dtype, seed=self.seed)
        elif self.profile is not None and self.calibration is None:
            self._start(self.profile)

    @property
    def tests(self) -> tuple[str, ...]:
        return NUMERIC_TESTS if isinstance(self.profile, NumericProfile) else CATEGORICAL_TESTS

    def _start(self, profile: Profile) -> None:
        """Take the reference; calibration waits for :meth:`calibrate_now` or the first full window."""
        self.profile, self.builder = profile, None
        if isinstance(profile, NumericProfile):
            self.buffer = np.zeros(self.window, dtype=np.float64)
        else:
            self.cells, self.probs = _cells(profile, self.window)
            self.counts = np.zeros(len(self.probs), dtype=np.int64)

    def update(self, x: Any, ts: float) -> None:
        """Add one value with its event time (Unix seconds)."""
        self.n += 1
        self.last_ts = ts
        if self.builder is not None:
            self.builder.update(x)
            if self.builder.done:
                self._start(self.builder.profile())
            return
        if len(self.buffer):  # numeric
            v = x if type(x) is float and x - x == 0.0 else as_number(x)  # fast path for finite floats
            if v is None:
                self.missing += 1
                return
            self.buffer[self.fill] = v
        else:
            label = as_label(x)
            if label is None:
                self.missing += 1
                return
            cell = self.cells.get(label)
            if cell is None:
                cell = len(self.counts) - 1
                if label in self.unseen or len(self.unseen) < 1000:
                    self.unseen[label] = self.unseen.get(label, 0) + 1
            self.counts[cell] += 1
        if self.fill == 0:
            self.start_ts = ts
        self.fill += 1
        if self.fill == self.window:
            self._judge()

    @property
    def needs_calibration(self) -> bool:
        return self.profile is not None and self.calibration is None

    def calibrate_now(self) -> None:
        """Simulate the thresholds (tens of ms): a caller can spread this work between batches."""
        assert self.profile is not None
        budget = self.budget_events * self.n_features * len(self.tests) / self.window
        self.calibration = calibrate(self.profile, self.window, budget, self.seed, self.draws)

    def _judge(self) -> None:
        if self.calibration is None:
            self.calibrate_now()
        assert self.profile is not None and self.calibration is not None
        if isinstance(self.profile, NumericProfile):
            stats = window_statistics(self.buffer, self.profile)
        else:
            rows = _categorical_rows(self.counts[None, :], self.probs)
            stats = {"chi2": float(rows["chi2"][0]), "psi": float(rows["psi"][0]), "unseen": float(len(self.unseen))}
            self.counts[:] = 0
            self.unseen = {}
        score = max(stats[t] / max(self.calibration.threshold(t), 1e-12) for t in self.tests)
        material = (
            stats["psi"] >= self.min_psi or stats.get("ks", 0.0) >= self.min_ks
            or stats.get("wasserstein", 0.0) >= self.min_wasserstein
        )
        hit = score >= 1.0 and material
        self.clean = 0 if hit else self.clean + 1
        self.active = hit or (self.active and self.clean < self.clear_after)
        self.stats, self.score = stats, min(float(score), CAP)
        self.judged = (self.start_ts, self.last_ts)
        self.windows += 1
        self.fill = 0

    def evidence(self) -> Evidence:
        """The last window's measurement, whether or not the condition holds."""
        label = self.name if self.name is not None else "score"
        if not self.stats or self.calibration is None:
            return Evidence(
                self.kind, self.name, "windowed", 0.0, 0.0, 0, self.last_ts, self.last_ts, "warning",
                f"{label}: no full window yet",
            )
        cal, stats = self.calibration, self.stats
        test = max(self.tests, key=lambda t: stats[t] / max(cal.threshold(t), 1e-12))
        major = (
            stats["psi"] >= 3 * self.min_psi or stats.get("ks", 0.0) >= 3 * self.min_ks
            or stats.get("wasserstein", 0.0) >= 3 * self.min_wasserstein
        )
        names = {"ks": "KS", "psi": "PSI", "wasserstein": "Wasserstein (std)", "chi2": "chi-square"}
        parts = ", ".join(f"{names[t]} {stats[t]:.3g} (threshold {cal.threshold(t):.3g})" for t in self.tests)
        unseen = f", {int(stats['unseen'])} unseen categories" if stats.get("unseen") else ""
        message = f"{label}: {parts} over the last {self.window} values{unseen}"
        return Evidence(
            self.kind, self.name, f"windowed_{test}", round(stats[test], 6), round(cal.threshold(test), 6),
            self.window, self.judged[0], self.judged[1], "critical" if major else "warning", message,
        )

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
from detectors.cusum import MeanShiftCusum
from detectors.reference import NumericProfile, ProfileBuilder, as_label, as_number, build_profile  # noqa: F401
from detectors.two_sample import (  # noqa: F401 (re-exported: the statistics live in two_sample)
    CAP, CATEGORICAL_TESTS, NUMERIC_TESTS, Profile, _categorical_rows, _cells, category_counts, chi_square,
    ks_statistic, psi, unseen_categories, wasserstein, window_statistics,
)

__all__ = [
    "Calibration", "WindowedDriftMonitor", "calibrate", "category_counts", "chi_square", "ks_statistic", "psi",
    "unseen_categories", "wasserstein", "window_statistics",
]


# A numeric feature's false-alarm share goes 3/4 to its CUSUM, whose thresholds grow with the log of
# the budget (delay with them), and 1/4 to the windowed tests, whose simulated thresholds barely move.
CUSUM_SHARE = 0.75


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
    ...     monitor.update(rng.normal(40, 6 if i < 3000 else 9), float(i))  # spread x1.5 at event 3000
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
    label: str | None = None  # what messages call the stream (default: its name, or "score")
    sequential: bool = True  # also run a CUSUM on a numeric feature's level (:class:`MeanShiftCusum`)
    builder: ProfileBuilder | None = None
    cusum: MeanShiftCusum | None = None
    fed: int = 0  # buffered values already given to the CUSUM
    fed_ts: float = 0.0
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
    window_hit: bool = False  # the windowed tests' own condition
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
    def active(self) -> bool:
        """Whether the windowed tests or the CUSUM hold their condition."""
        return self.window_hit or (self.cusum is not None and self.cusum.active)

    @property
    def tests(self) -> tuple[str, ...]:
        return NUMERIC_TESTS if isinstance(self.profile, NumericProfile) else CATEGORICAL_TESTS

    def _start(self, profile: Profile) -> None:
        """Take the reference; calibration waits for :meth:`calibrate_now` or the first full window."""
        self.profile, self.builder = profile, None
        if isinstance(profile, NumericProfile):
            self.buffer = np.zeros(self.window, dtype=np.float64)
            if self.sequential:
                budget = self.budget_events * self.n_features / CUSUM_SHARE
                self.cusum = MeanShiftCusum(self.name, profile, self.kind, budget, clear_window=self.window)
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
            if self.fill == self.fed:
                self.fed_ts = ts
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
        cusum = self.cusum
        if cusum is not None and (self.fill - self.fed >= cusum.chunk or self.fill == self.window):
            cusum.update_many(self.buffer[self.fed:self.fill], self.fed_ts, ts)
            self.fed = self.fill
        if self.fill == self.window:
            self._judge()

    def set_budget(self, budget_events: float) -> None:
        """Take a new false-alarm budget: the CUSUM's thresholds now, the windowed tests' at their next window."""
        if budget_events == self.budget_events:
            return
        self.budget_events = budget_events
        self.calibration = None
        if self.cusum is not None:
            self.cusum.set_budget(budget_events * self.n_features / CUSUM_SHARE)

    @property
    def needs_calibration(self) -> bool:
        return self.profile is not None and self.calibration is None

    def calibrate_now(self) -> None:
        """Simulate the thresholds (tens of ms): a caller can spread this work between batches."""
        assert self.profile is not None
        share = 1.0 - CUSUM_SHARE if self.cusum is not None else 1.0
        budget = self.budget_events * self.n_features * len(self.tests) / self.window / share
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
        self.window_hit = hit or (self.window_hit and self.clean < self.clear_after)
        self.stats, self.score = stats, min(float(score), CAP)
        self.judged = (self.start_ts, self.last_ts)
        self.windows += 1
        self.fill = self.fed = 0

    def evidence(self) -> Evidence:
        """The CUSUM's decision while only it holds, else the last window's measurement."""
        if self.cusum is not None and self.cusum.active and not self.window_hit:
            return self.cusum.evidence()
        label = self.label or (self.name if self.name is not None else "score")
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

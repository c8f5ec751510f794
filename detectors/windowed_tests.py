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

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from detectors.alerts import Evidence
from detectors.reference import CategoricalProfile, NumericProfile, ProfileBuilder, as_label, as_number, build_profile

EPS = 1e-4  # floor on bin and category shares (PSI, chi-square)
CAP = 1e12  # statistics are capped here so they stay finite
TRIM = 0.01  # the Wasserstein distance leaves out the outer 1% on each side
MIN_EXPECTED = 5.0  # categories expected fewer times per window share the "other" cell
NUMERIC_TESTS = ("ks", "psi", "wasserstein")
CATEGORICAL_TESTS = ("chi2", "psi")
Profile = NumericProfile | CategoricalProfile


def _at_most(xs: np.ndarray, points: np.ndarray, side: str = "right") -> np.ndarray:
    """How many values of each sorted row are at most (``side="left"``: below) each point."""
    out = np.empty((len(xs), len(points)))
    for r, row in enumerate(xs):
        out[r] = row.searchsorted(points, side)
    return out


def _psi_rows(counts: np.ndarray, ref: np.ndarray) -> np.ndarray:
    w = np.maximum(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1), EPS)
    r = np.maximum(ref, EPS)
    return np.sum((w - r) * np.log(w / r), axis=1)


def _ks_rows(xs: np.ndarray, profile: NumericProfile) -> np.ndarray:
    """KS of each sorted row at the sketch points, where the reference CDF is known exactly.

    At an atom (a sketch point the sample holds, ``cdf_below < cdf_at_most``)
    both limits count: the window's share below it against ``cdf_below`` too.
    """
    u, first = np.unique(np.asarray(profile.quantiles), return_index=True)
    cdf_below, cdf_at_most = np.asarray(profile.cdf_below)[first], np.asarray(profile.cdf_at_most)[first]
    atoms = cdf_below < cdf_at_most
    m = xs.shape[1]
    gap = np.abs(_at_most(xs, u) / m - cdf_at_most).max(axis=1)
    if atoms.any():
        gap = np.maximum(gap, np.abs(_at_most(xs, u[atoms], side="left") / m - cdf_below[atoms]).max(axis=1))
    return gap


def _psi_numeric_rows(xs: np.ndarray, profile: NumericProfile) -> np.ndarray:
    cumulative = np.column_stack([_at_most(xs, np.asarray(profile.psi_edges)), np.full(len(xs), xs.shape[1])])
    return _psi_rows(np.diff(cumulative, axis=1, prepend=0.0), np.asarray(profile.psi_fractions))


def _wasserstein_rows(xs: np.ndarray, profile: NumericProfile) -> np.ndarray:
    """Mean |window quantile - sketch quantile| over the sketch points within [TRIM, 1 - TRIM], in reference std."""
    q = np.asarray(profile.quantiles)
    p = np.linspace(0.0, 1.0, len(q))
    inner = (p >= TRIM - 1e-9) & (p <= 1.0 - TRIM + 1e-9) if len(q) > 2 else np.ones(len(q), dtype=bool)
    h = p[inner] * (xs.shape[1] - 1)
    lo = np.floor(h).astype(np.int64)
    frac = h - lo
    a, b = xs[:, lo], xs[:, np.minimum(lo + 1, xs.shape[1] - 1)]
    scale = max(profile.std, 1e-9 * abs(profile.mean), 1e-12)
    with np.errstate(over="ignore", invalid="ignore"):
        qn = np.where((a == b) | (frac == 0), a, a + (b - a) * frac)
        w = np.mean(np.abs(qn - q[inner]), axis=1) / scale
    return np.minimum(np.nan_to_num(w, nan=CAP, posinf=CAP), CAP)


def _cells(profile: CategoricalProfile, window: int) -> tuple[dict[str, int], np.ndarray]:
    """Category -> cell for windows of ``window`` values, and each cell's reference share.

    Categories expected at least ``MIN_EXPECTED`` times keep a cell; the rest share the last
    cell with ``other`` and any category the reference never saw.
    """
    freqs = np.asarray(profile.frequencies, dtype=np.float64)
    keep = freqs * window >= MIN_EXPECTED
    k = int(keep.sum())
    ids = np.where(keep, np.cumsum(keep) - 1, k)
    probs = np.append(freqs[keep], max(1.0 - math.fsum(freqs[keep]), 0.0))
    return {c: int(i) for c, i in zip(profile.categories, ids)}, probs


def _categorical_rows(counts: np.ndarray, probs: np.ndarray) -> dict[str, np.ndarray]:
    m = counts.sum(axis=1, keepdims=True)
    chi2 = np.sum((counts - m * probs) ** 2 / np.maximum(m * np.maximum(probs, EPS), 1e-300), axis=1)
    return {"chi2": np.minimum(chi2, CAP), "psi": _psi_rows(counts, probs)}


def _sorted_rows(window: Iterable[float]) -> np.ndarray:
    """The window's finite values, sorted, as one row."""
    x = np.asarray(window, dtype=np.float64).ravel()
    return np.sort(x[np.isfinite(x)])[None, :]


def _category_rows(window: Iterable[Any], profile: CategoricalProfile) -> tuple[np.ndarray, np.ndarray]:
    """Counts per cell (see ``_cells``) of a window of categories as one row, and the cells' shares."""
    labels = [s for s in map(as_label, window) if s is not None]
    index, probs = _cells(profile, len(labels))
    other = len(probs) - 1
    return np.bincount([index.get(s, other) for s in labels], minlength=len(probs))[None, :], probs


def category_counts(window: Iterable[Any], profile: CategoricalProfile) -> np.ndarray:
    """Counts of a window's categories per cell: the categories expected at least 5 times, then the rest."""
    return _category_rows(window, profile)[0][0]


def ks_statistic(window: Iterable[float], profile: NumericProfile) -> float:
    """Kolmogorov-Smirnov distance between the window and the reference CDF (0 for an empty window)."""
    xs = _sorted_rows(window)
    return float(_ks_rows(xs, profile)[0]) if xs.size else 0.0


def wasserstein(window: Iterable[float], profile: NumericProfile) -> float:
    """Wasserstein-1 distance between quantile functions over [1%, 99%], in units of the reference std."""
    xs = _sorted_rows(window)
    return float(_wasserstein_rows(xs, profile)[0]) if xs.size else 0.0


def psi(window: Iterable[Any], profile: Profile) -> float:
    """Population stability index over the profile's quantile bins, or over its category cells."""
    if isinstance(profile, NumericProfile):
        xs = _sorted_rows(window)
        return float(_psi_numeric_rows(xs, profile)[0]) if xs.size else 0.0
    counts, probs = _category_rows(window, profile)
    return float(_categorical_rows(counts, probs)["psi"][0]) if counts.sum() else 0.0


def chi_square(window: Iterable[Any], profile: CategoricalProfile) -> float:
    """Pearson's chi-square of the window's category counts against the reference mix."""
    return float(_categorical_rows(*_category_rows(window, profile))["chi2"][0])


def unseen_categories(window: Iterable[Any], profile: CategoricalProfile) -> int:
    """How many distinct categories of the window the profile does not list."""
    known = set(profile.categories)
    return len({s for s in map(as_label, window) if s is not None and s not in known})


def _tail_quantile(stats: np.ndarray, alpha: float, power: float) -> float:
    """The (1 - alpha) quantile of simulated statistics, past the simulation by an exponential tail.

    The tail is fitted to ``stats ** (1 / power)``: ``power`` 2 puts chi-square-like
    statistics (PSI, chi-square) on the scale of distances (KS, Wasserstein).
    """
    s = np.sort(stats) ** (1.0 / power)
    d = len(s)
    if alpha * d >= 10:
        return float(np.quantile(s, 1.0 - alpha)) ** power
    k = max(d // 20, 10)
    base = s[d - k - 1]
    beta = float(np.mean(s[d - k:] - base))
    return max(float(base) + beta * math.log(k / d / alpha), float(s[-1])) ** power


@dataclass(frozen=True, slots=True)
class Calibration:
    """Per-window thresholds of each test, for a false-alarm probability ``alpha`` per test and window.

    >>> import numpy as np
    >>> profile = build_profile(np.random.default_rng(0).normal(0, 1, 10_000))
    >>> cal = calibrate(profile, window=500, windows_budget=120_000, seed=0)
    >>> cal.tests, [round(t, 3) for t in cal.thresholds]
    (('ks', 'psi', 'wasserstein'), [0.132, 0.102, 0.228])
    """

    tests: tuple[str, ...]
    thresholds: tuple[float, ...]
    alpha: float
    window: int
    draws: int

    def threshold(self, test: str) -> float:
        return self.thresholds[self.tests.index(test)]


def calibrate(profile: Profile, window: int, windows_budget: float, seed: int = 0, draws: int = 2000) -> Calibration:
    """Thresholds such that each test fires on a stationary window with probability ``1 / windows_budget``.

    Method: draw ``draws`` windows from the reference itself (inverse-CDF
    sampling from the sketch, atoms included; multinomial over the category
    cells) and compute every statistic. When ``alpha * draws >= 10`` the
    threshold is the empirical ``1 - alpha`` quantile. Below what the
    simulation can resolve, an exponential tail is fitted to the top 5% (GPD
    with shape 0: base + mean excess * log(0.05 / alpha)) of the statistic, or
    of its square root for PSI and chi-square, and the threshold is never below
    the simulated maximum. On those scales the log-tail of every statistic is
    concave (KS and Wasserstein are sub-Gaussian, the root of a chi-square of any
    degrees of freedom too), so the fit overstates the tail: it errs towards
    silence. Finally thresholds grow for the reference's own sampling error, as
    two-sample statistics do: by ``g = 1 + window / sample_size`` for PSI and
    chi-square, by ``sqrt(g)`` for KS and Wasserstein.
    """
    rng = np.random.default_rng(seed)
    alpha = 1.0 / max(windows_budget, 1.0)
    if isinstance(profile, NumericProfile):
        xs = profile.inverse_cdf(np.sort(rng.random((draws, window)), axis=1))
        tests = NUMERIC_TESTS
        stats = dict(zip(tests, (_ks_rows(xs, profile), _psi_numeric_rows(xs, profile), _wasserstein_rows(xs, profile))))
    else:
        probs = _cells(profile, window)[1]
        stats = _categorical_rows(rng.multinomial(window, probs / probs.sum(), size=draws), probs)
        tests = CATEGORICAL_TESTS
    grow = 1.0 + window / max(profile.sample_size, 1)
    power = {t: 2.0 if t in ("psi", "chi2") else 1.0 for t in tests}
    thresholds = tuple(_tail_quantile(stats[t], alpha, power[t]) * grow ** (power[t] / 2) for t in tests)
    return Calibration(tests, thresholds, alpha, window, draws)


def window_statistics(window: Iterable[Any], profile: Profile) -> dict[str, float]:
    """Every statistic of one window: KS, PSI and Wasserstein, or chi-square, PSI and unseen categories."""
    if isinstance(profile, NumericProfile):
        xs = _sorted_rows(window)
        if not xs.size:
            return dict.fromkeys(NUMERIC_TESTS, 0.0)
        rows = (_ks_rows(xs, profile), _psi_numeric_rows(xs, profile), _wasserstein_rows(xs, profile))
        return {t: float(r[0]) for t, r in zip(NUMERIC_TESTS, rows)}
    values = list(window)
    unseen = float(unseen_categories(values, profile))
    return {"chi2": chi_square(values, profile), "psi": psi(values, profile), "unseen": unseen}


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

"""Windowed drift tests against a reference profile, with thresholds calibrated by simulation.

At large samples every per-feature test finds a negligible difference
significant, and a mean tracker (ADWIN) misses changes of spread or shape. Here
each feature is judged once per tumbling window against its reference profile
(:mod:`detectors.reference`) with several statistics (KS, PSI and Wasserstein-1
for numbers; chi-square and PSI for categories). An alert needs both a material
effect and a significance level that spends a false-alarm budget, which
:func:`calibrate` turns into thresholds (shared between features wherever they
do not depend on the feature: see :mod:`detectors.calibration`).

Batches (:meth:`WindowedDriftMonitor.update_many`) are exact: windows close at
fixed counts of usable values and the CUSUM decides at the exact value, so any
split of a stream gives the same changes and the same state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, cast

import numpy as np

from detectors.alerts import Evidence
from detectors.base import Change, as_times
from detectors.calibration import Calibration, calibrate
from detectors.cusum import MeanShiftCusum
from detectors.profile_builder import ProfileBuilder
from detectors.reference import (  # noqa: F401 (build_profile: doctest)
    CategoricalProfile,
    NumericProfile,
    Profile,
    as_label,
    as_number,
    as_numbers,
    build_profile,
)
from detectors.two_sample import (  # noqa: F401 (re-exported: the statistics live in two_sample)
    CAP,
    CATEGORICAL_TESTS,
    NUMERIC_TESTS,
    NumericWindowTests,
    categorical_rows,
    category_cells,
    category_counts,
    chi_square,
    ks_statistic,
    psi,
    unseen_categories,
    wasserstein,
    window_statistics,
)

__all__ = [
    "CUSUM_SHARE",
    "Calibration",
    "WindowedDriftMonitor",
    "calibrate",
    "category_counts",
    "chi_square",
    "ks_statistic",
    "psi",
    "unseen_categories",
    "wasserstein",
    "window_statistics",
]


# A numeric feature's false-alarm share goes 3/4 to its CUSUM, whose thresholds grow with the log of
# the budget (delay with them), and 1/4 to the windowed tests, whose simulated thresholds barely move.
CUSUM_SHARE = 0.75
# Batches up to this size go value by value in plain Python (the same state as numpy gives): the numpy
# path costs a few dozen calls per batch for numbers (with their CUSUM, or a reference building), fewer
# for categories.
_SMALL_NUMERIC, _SMALL_CATEGORICAL = 12, 4
_SETTINGS = (
    "name",
    "kind",
    "window",
    "n_features",
    "budget_events",
    "reference_size",
    "dtype",
    "min_psi",
    "min_ks",
    "min_wasserstein",
    "clear_after",
    "draws",
    "seed",
    "label",
    "sequential",
)


_FIELD_DEFAULTS: dict[type, tuple[dict[str, Any], tuple[tuple[str, Any], ...]]] = {}


def _field_defaults(cls: type) -> tuple[dict[str, Any], tuple[tuple[str, Any], ...]]:
    """A dataclass's fields, read once per class: every one (in order) with its plain default, and the
    (name, default factory) of those that have a factory instead."""
    found = _FIELD_DEFAULTS.get(cls)
    if found is None:
        specs = fields(cls)
        plain = {spec.name: None if spec.default is MISSING else spec.default for spec in specs}
        factories = tuple((spec.name, spec.default_factory) for spec in specs if spec.default_factory is not MISSING)
        found = _FIELD_DEFAULTS[cls] = (plain, factories)
    return found


def _no_floats() -> np.ndarray:
    return np.zeros(0, dtype=np.float64)


def _no_ints() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass
class WindowedDriftMonitor:
    """Tumbling windows of one feature tested against its reference profile.

    Values fill a window of ``window`` values (allocated once a reference
    exists); each full window is tested once (KS, PSI, Wasserstein for a
    :class:`NumericProfile`; chi-square and PSI for a :class:`CategoricalProfile`).
    A window *hits* when some test crosses its calibrated threshold
    (significance: with ``n_features`` features and one threshold per test, a
    stationary model raises at most about one false alarm per
    ``budget_events`` events) and the effect is material (PSI >= ``min_psi``,
    KS >= ``min_ks`` or Wasserstein >= ``min_wasserstein`` reference std). The
    windowed condition holds from the first hit until ``clear_after`` windows
    in a row do not hit; a numeric feature also runs a CUSUM on its level
    (:class:`MeanShiftCusum`), and :attr:`active` holds while either holds.
    Without a profile, the first ``reference_size`` present values build one
    (:class:`ProfileBuilder`). The reference (the ``profile`` argument) is kept
    in :attr:`numeric` or :attr:`categorical`, two fields so that checkpoints
    decode it typed; :attr:`profile` reads it. ``None``, NaN and non-numbers
    (for a numeric profile) are skipped and counted in :attr:`missing`; the
    missing rate has its own monitor.

    Examples
    --------
    >>> rng = np.random.default_rng(7)
    >>> monitor = WindowedDriftMonitor("age", build_profile(rng.normal(40, 6, 10_000)), n_features=20)
    >>> x = rng.normal(40, np.where(np.arange(6000) < 3000, 6, 9))  # spread x1.5 at event 3000
    >>> [(c.index, c.active, c.evidence.detector) for c in monitor.update_many(x, np.arange(6000.0))]
    [(3499, True, 'windowed_psi')]
    """

    name: str | None
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
    numeric: NumericProfile | None = None  # the reference: one of the two, once known
    categorical: CategoricalProfile | None = None
    builder: ProfileBuilder | None = None
    cusum: MeanShiftCusum | None = None
    calibration: Calibration | None = None
    buffer: np.ndarray = field(default_factory=_no_floats)  # numbers: the window's values
    counts: np.ndarray = field(default_factory=_no_ints)  # categories: the window's count per cell
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

    def __init__(  # the settings' defaults are the fields' (names in a class body see the class's own)
        self,
        name: str | None,
        profile: Profile | None = None,
        kind: str = kind,
        window: int = window,
        n_features: int = n_features,
        budget_events: float = budget_events,
        reference_size: int = reference_size,
        dtype: str | None = dtype,
        min_psi: float = min_psi,
        min_ks: float = min_ks,
        min_wasserstein: float = min_wasserstein,
        clear_after: int = clear_after,
        draws: int = draws,
        seed: int = seed,
        label: str | None = label,
        sequential: bool = sequential,
    ) -> None:
        given = locals()
        plain, factories = _field_defaults(type(self))
        state = dict(plain)  # every field, in the order of the class
        for name in _SETTINGS:
            state[name] = given[name]
        for name, factory in factories:
            state[name] = factory()
        self.__dict__.update(state)
        if profile is None:
            self.builder = ProfileBuilder(size=self.reference_size, kind=self.dtype, seed=self.seed)
        else:
            self._start(profile)
        self._derive()

    def __post_init__(self) -> None:  # a checkpoint decoded by streams.codec
        self._derive()

    def _derive(self) -> None:
        """Rebuild what derives from the reference (never checkpointed; the numeric tests' tables wait for a window)."""
        self._numeric_tests: NumericWindowTests | None = None
        if self.categorical is not None:
            self._cells, self._probs = category_cells(self.categorical, self.window)

    _after_restore = _derive  # the old checkpoint codec (streams/checkpoint.py) calls this after decoding

    @property
    def profile(self) -> Profile | None:
        """The reference, once there is one."""
        return self.numeric if self.numeric is not None else self.categorical

    @property
    def active(self) -> bool:
        """Whether the windowed tests or the CUSUM hold their condition."""
        return self.window_hit or (self.cusum is not None and self.cusum.active)

    @property
    def tests(self) -> tuple[str, ...]:
        return NUMERIC_TESTS if self.numeric is not None else CATEGORICAL_TESTS

    def _start(self, profile: Profile) -> None:
        """Take the reference; calibration waits for :meth:`calibrate_now` or the first full window."""
        self.builder = None
        if isinstance(profile, NumericProfile):
            self.numeric = profile
            self._numeric_tests = None
            self.buffer = np.zeros(self.window, dtype=np.float64)
            if self.sequential:
                budget = self.budget_events * self.n_features / CUSUM_SHARE
                self.cusum = MeanShiftCusum(self.name, profile, self.kind, budget, clear_window=self.window)
        else:
            self.categorical = profile
            self._derive()
            self.counts = np.zeros(len(self._probs), dtype=np.int64)

    def update(self, x: Any, ts: float) -> None:
        """Add one value with its event time (Unix seconds)."""
        self._one(x, float(ts))

    def _one(self, x: Any, ts: float) -> Change | None:
        """One value, in plain Python; the change it makes (at index 0), if any. The state of ``update_many([x])``."""
        self.n += 1
        self.last_ts = ts
        if self.builder is not None:
            self.builder.update(x)
            if self.builder.done:
                self._start(self.builder.profile())
            return None
        cusum = self.cusum
        before = self.window_hit or (cusum is not None and cusum.active)
        if self.numeric is not None:
            v = x if type(x) is float and x - x == 0.0 else as_number(x)
            if v is None:
                self.missing += 1
                return None
            if self.fill == 0:
                self.start_ts = ts
            self.buffer[self.fill] = v
            if cusum is not None:
                cusum.step(v, ts)
        else:
            label = as_label(x)
            if label is None:
                self.missing += 1
                return None
            if self.fill == 0:
                self.start_ts = ts
            self.counts[self._cell(label)] += 1
        self.fill += 1
        if self.fill == self.window:
            self._judge()
        after = self.window_hit or (cusum is not None and cusum.active)
        return Change(0, after, self.evidence()) if after != before else None

    def update_many(self, values: np.ndarray | Sequence[Any], ts: np.ndarray | float) -> list[Change]:
        """Add values in stream order with their event times; return where :attr:`active` started or stopped.

        A numeric stream is a float64 column (NaN: no usable value); a categorical
        one, a sequence of labels (``None``: none). While the reference builds,
        values go to it; a batch that completes it goes on into windows at once.
        """
        n = len(values)
        if not n:
            return []
        if n <= (_SMALL_CATEGORICAL if self.categorical is not None else _SMALL_NUMERIC):
            items = values.tolist() if isinstance(values, np.ndarray) else values
            stamps = ts.tolist() if isinstance(ts, np.ndarray) and ts.ndim == 1 else as_times(ts, n).tolist()
            changes: list[Change] = []
            for i in range(n):
                change = self._one(items[i], stamps[i])
                if change is not None:
                    changes.append(Change(i, change.active, change.evidence))
            return changes
        times = as_times(ts, n)
        self.n += n
        start = 0
        if self.builder is not None:
            start = self.builder.update_many(values)
            if self.builder.done:
                self._start(self.builder.profile())
        changes = []
        if start < n and self.builder is None:
            rest = values[start:]
            if self.numeric is not None:
                self._numbers(as_numbers(rest), times[start:], start, changes)
            else:
                items = rest.tolist() if isinstance(rest, np.ndarray) else list(rest)
                self._labels(items, times[start:], start, changes)
        self.last_ts = float(times[-1])
        return changes

    def build(self, values: np.ndarray | Sequence[Any], last_ts: float) -> None:
        """:meth:`update_many` of values that all go to the building reference and do not complete it."""
        assert self.builder is not None
        self.n += len(values)
        self.builder.update_many(values)
        self.last_ts = last_ts

    def _numbers(self, x: np.ndarray, times: np.ndarray, offset: int, changes: list[Change]) -> None:
        usable = np.isfinite(x)
        where = np.flatnonzero(usable) if not usable.all() else None
        if where is not None:
            self.missing += len(x) - len(where)
            x, times = x[where], times[where]

        def at(i: int) -> int:  # the batch index of usable value i
            return offset + (i if where is None else int(where[i]))

        done = 0
        cusum = None if self.cusum is None or self._cusum_ran_quiet(self.cusum, x, times) else self.cusum
        while done < len(x):
            end = done + min(len(x) - done, self.window - self.fill)
            if self.fill == 0:
                self.start_ts = float(times[done])
            self.buffer[self.fill : self.fill + end - done] = x[done:end]
            self.fill += end - done
            closes = self.fill == self.window
            before = self.active  # the condition before the window's last value, if it closes
            for change in cusum.update_many(x[done:end], times[done:end]) if cusum is not None else ():
                i = done + change.index
                if closes and i == end - 1:
                    break  # judged with the window, below
                before = self.window_hit or change.active
                if not self.window_hit:
                    evidence = change.evidence if change.active else self._window_evidence(float(times[i]))
                    changes.append(Change(at(i), change.active, evidence))
            if closes:
                self.last_ts = float(times[end - 1])
                self._judge()
                if self.active != before:
                    changes.append(Change(at(end - 1), self.active, self.evidence()))
            done = end

    def _cusum_ran_quiet(self, cusum: MeanShiftCusum, x: np.ndarray, times: np.ndarray) -> bool:
        """Run the CUSUM over values that span windows in one call, if its condition does not change in them (the
        common case: the loop above then needs no call per window); otherwise leave it as it was and say False.

        One call leaves the state of one per window (any split does), and with no change in between nothing
        the windows decide reads the CUSUM's state at their ends.
        """
        if len(x) <= self.window - self.fill:
            return False  # within one window: one call either way
        saved = dict(cusum.__dict__)
        for name in ("csum", "low", "run_start", "run_ts"):  # lists a small batch updates in place
            saved[name] = list(saved[name])
        if not cusum.update_many(x, times):
            return True
        cusum.__dict__.update(saved)
        return False

    def _labels(self, items: list[Any], times: np.ndarray, offset: int, changes: list[Change]) -> None:
        kinds = set(map(type, items))
        plain = kinds == {str} or kinds <= {int, bool}  # the common cases: none missing, labels str(value)
        labels = items if kinds == {str} else list(map(str, items)) if plain else [as_label(v) for v in items]
        present = range(len(labels)) if plain else [i for i, label in enumerate(labels) if label is not None]
        named = cast(list[str], labels)  # read at ``present`` positions only: strings
        self.missing += len(labels) - len(present)
        done = 0
        while done < len(present):
            part = present[done : done + self.window - self.fill]
            if self.fill == 0:
                self.start_ts = float(times[part[0]])
            self.counts += np.bincount(self._cells_of([named[i] for i in part]), minlength=len(self.counts))
            self.fill += len(part)
            done += len(part)
            if self.fill == self.window:
                before = self.window_hit
                self.last_ts = float(times[part[-1]])
                self._judge()
                if self.window_hit != before:
                    changes.append(Change(offset + part[-1], self.window_hit, self.evidence()))

    def _cells_of(self, labels: list[str]) -> list[int]:
        """The window cells of categories: dictionary lookups, and :meth:`_cell` for those the reference lacks."""
        get = self._cells.get
        cells = [get(label, -1) for label in labels]
        if -1 in cells:
            cells = [cell if cell >= 0 else self._cell(label) for cell, label in zip(cells, labels, strict=True)]
        return cells

    def _cell(self, label: str) -> int:
        """The window cell of a category (counting it among the unseen when the reference lacks it)."""
        cell = self._cells.get(label)
        if cell is None:
            cell = len(self.counts) - 1
            if label in self.unseen or len(self.unseen) < 1000:
                self.unseen[label] = self.unseen.get(label, 0) + 1
        return cell

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
        """Set the thresholds: a matrix product for a continuous feature whose reference size was seen before,
        tens of ms otherwise (a caller can spread this work between batches)."""
        profile = self.profile
        assert profile is not None
        share = 1.0 - CUSUM_SHARE if self.cusum is not None else 1.0
        budget = self.budget_events * self.n_features * len(self.tests) / self.window / share
        self.calibration = calibrate(profile, self.window, budget, self.seed, self.draws)

    def _judge(self) -> None:
        if self.calibration is None:
            self.calibrate_now()
        assert self.calibration is not None
        if self.numeric is not None:
            if self._numeric_tests is None:
                self._numeric_tests = NumericWindowTests(self.numeric, self.window)
            stats = self._numeric_tests.statistics(self.buffer)
        else:
            rows = categorical_rows(self.counts[None, :], self._probs)
            stats = {"chi2": float(rows["chi2"][0]), "psi": float(rows["psi"][0]), "unseen": float(len(self.unseen))}
            self.counts[:] = 0
            self.unseen = {}
        score = max(stats[t] / max(self.calibration.threshold(t), 1e-12) for t in self.tests)
        material = (
            stats["psi"] >= self.min_psi
            or stats.get("ks", 0.0) >= self.min_ks
            or stats.get("wasserstein", 0.0) >= self.min_wasserstein
        )
        hit = score >= 1.0 and material
        self.clean = 0 if hit else self.clean + 1
        self.window_hit = hit or (self.window_hit and self.clean < self.clear_after)
        self.stats, self.score = stats, min(float(score), CAP)
        self.judged = (self.start_ts, self.last_ts)
        self.windows += 1
        self.fill = 0

    def evidence(self) -> Evidence:
        """The CUSUM's decision while only it holds, else the last window's measurement."""
        if self.cusum is not None and self.cusum.active and not self.window_hit:
            return self.cusum.evidence()
        return self._window_evidence(self.last_ts)

    def _window_evidence(self, at: float) -> Evidence:
        """The last window's measurement (or that there is none yet, as of event time ``at``)."""
        label = self.label or (self.name if self.name is not None else "score")
        if not self.stats or self.calibration is None:
            message = f"{label}: no full window yet"
            return Evidence(self.kind, self.name, "windowed", 0.0, 0.0, 0, at, at, "warning", message)
        cal, stats = self.calibration, self.stats
        test = max(self.tests, key=lambda t: stats[t] / max(cal.threshold(t), 1e-12))
        major = (
            stats["psi"] >= 3 * self.min_psi
            or stats.get("ks", 0.0) >= 3 * self.min_ks
            or stats.get("wasserstein", 0.0) >= 3 * self.min_wasserstein
        )
        names = {"ks": "KS", "psi": "PSI", "wasserstein": "Wasserstein (std)", "chi2": "chi-square"}
        parts = ", ".join(f"{names[t]} {stats[t]:.3g} (threshold {cal.threshold(t):.3g})" for t in self.tests)
        unseen = f", {int(stats['unseen'])} unseen categories" if stats.get("unseen") else ""
        message = f"{label}: {parts} over the last {self.window} values{unseen}"
        return Evidence(
            self.kind,
            self.name,
            f"windowed_{test}",
            round(stats[test], 6),
            round(cal.threshold(test), 6),
            self.window,
            self.judged[0],
            self.judged[1],
            "critical" if major else "warning",
            message,
        )

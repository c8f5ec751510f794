"""A feature's reference against its recent values: shares that sum to one, in the test's own cells."""

from __future__ import annotations

import numpy as np

from detectors.distributions import categorical_distribution, numeric_distribution, window_distribution
from detectors.reference import build_profile
from detectors.two_sample import category_cells
from detectors.windowed_tests import WindowedDriftMonitor


def test_numeric_bins_cover_both_ranges_and_sum_to_one() -> None:
    rng = np.random.default_rng(4)
    profile = build_profile(rng.normal(0, 1, 5000))
    shown = numeric_distribution(profile, rng.normal(3, 1, 500))
    assert shown.edges[0] <= min(profile.quantiles) and shown.edges[-1] >= 3
    assert abs(sum(shown.reference) - 1) < 1e-9 and abs(sum(shown.recent) - 1) < 1e-9
    assert shown.recent_n == 500 and shown.reference_n == 5000
    assert numeric_distribution(profile, np.array([])).recent == (0.0,) * 20  # no recent values yet


def test_categories_too_rare_for_a_cell_are_drawn_with_other() -> None:
    profile = build_profile(["a"] * 900 + ["b"] * 95 + ["c"] * 5)
    cells, _ = category_cells(profile, 500)  # "c" is expected 2.5 times in 500: it shares the last cell
    shown = categorical_distribution(profile, cells, np.array([250, 200, 50]))
    assert shown.labels == ("a", "b", "other")
    assert [round(s, 3) for s in shown.reference] == [0.9, 0.095, 0.005]
    assert shown.recent == (0.5, 0.4, 0.1) and shown.recent_n == 500


def test_a_monitor_shows_its_last_full_window_then_its_newest_values() -> None:
    rng = np.random.default_rng(5)
    monitor = WindowedDriftMonitor("x", build_profile(rng.normal(0, 1, 5000)), window=100)
    assert window_distribution(WindowedDriftMonitor("y", None)) is None  # no reference yet
    for i in range(40):
        monitor.update(float(rng.normal()), float(i))
    assert window_distribution(monitor).recent_n == 40
    for i in range(130):
        monitor.update(float(rng.normal(5, 1)), float(i))
    assert window_distribution(monitor).recent_n == 100  # the buffer holds the last 100 values

"""Alert values, stable alert ids, and the AlertBook episode lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.alerts import KINDS, Alert, AlertBook, Evidence, alert_id_for, rfc3339

CONTRACT_FIELDS = {
    "alert_id",
    "model_id",
    "model_version",
    "kind",
    "status",
    "severity",
    "feature",
    "segment",
    "detector",
    "statistic",
    "threshold",
    "n",
    "window_start",
    "window_end",
    "message",
    "detected_at",
}


def evidence(
    kind: str = "data_drift", feature: str | None = "age", severity: str = "warning", **kw: object
) -> Evidence:
    fields: dict[str, object] = dict(
        kind=kind,
        feature=feature,
        detector="adwin",
        statistic=0.9,
        threshold=0.25,
        n=120,
        window_start=10.0,
        window_end=20.0,
        severity=severity,
        message=f"{feature} moved",
    )
    fields.update(kw)
    return Evidence(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "epoch,text",
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1767225600, "2026-01-01T00:00:00.000Z"),
        (1767225600.5, "2026-01-01T00:00:00.500Z"),
        (1767225600.0999, "2026-01-01T00:00:00.099Z"),
    ],
)
def test_rfc3339(epoch: float, text: str) -> None:
    assert rfc3339(epoch) == text
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert parsed.tzinfo == UTC


def test_kinds_are_the_contract_kinds() -> None:
    assert set(KINDS) == {"data_drift", "prediction_drift", "concept_drift", "performance", "data_quality"}


def test_alert_to_dict_has_exactly_the_contract_fields() -> None:
    e = evidence(window_start=60.0, window_end=120.0)
    doc = Alert.from_evidence("a1", "churn", "v3", "firing", e, detected_at=121.5).to_dict()
    assert set(doc) == CONTRACT_FIELDS | {"top_features"}  # data drift adds the top drifting features
    other = Alert.from_evidence("a2", "churn", "v3", "firing", evidence(kind="performance"), 1.0).to_dict()
    assert set(other) == CONTRACT_FIELDS
    assert doc["alert_id"] == "a1"
    assert (doc["model_id"], doc["model_version"], doc["status"]) == ("churn", "v3", "firing")
    assert (doc["kind"], doc["feature"], doc["detector"], doc["severity"]) == ("data_drift", "age", "adwin", "warning")
    assert doc["segment"] is None
    assert (doc["statistic"], doc["threshold"], doc["n"]) == (0.9, 0.25, 120)
    assert isinstance(doc["n"], int)
    assert doc["window_start"] == "1970-01-01T00:01:00.000Z"
    assert doc["window_end"] == "1970-01-01T00:02:00.000Z"
    assert doc["detected_at"] == "1970-01-01T00:02:01.500Z"
    assert doc["message"] == "age moved"


def test_alert_id_is_deterministic_and_distinguishes_its_inputs() -> None:
    base = alert_id_for("churn", "data_drift", "age", "adwin", 1)
    assert base == alert_id_for("churn", "data_drift", "age", "adwin", 1)
    others = {
        alert_id_for("churn", "data_drift", "age", "adwin", 2),
        alert_id_for("fraud", "data_drift", "age", "adwin", 1),
        alert_id_for("churn", "data_quality", "age", "adwin", 1),
        alert_id_for("churn", "data_drift", "income", "adwin", 1),
        alert_id_for("churn", "data_drift", None, "adwin", 1),
    }
    assert base not in others and len(others) == 5
    assert isinstance(base, str) and len(base) == 20


def test_one_firing_and_one_resolved_per_episode_with_the_same_id() -> None:
    book = AlertBook("churn")
    e = evidence()
    fired = book.change(e, True, 21.0, "v1", 21.0)
    assert [a.status for a in fired] == ["firing"]
    assert book.change(e, True, 22.0, "v1", 22.0) == []  # still the same episode
    assert book.status() == "warning"
    resolved = book.change(evidence(statistic=0.05), False, 30.0, "v1", 30.0)
    assert [a.status for a in resolved] == ["resolved"]
    assert resolved[0].alert_id == fired[0].alert_id
    assert resolved[0].detected_at == 30.0
    assert resolved[0].evidence.statistic == 0.05  # the measurement that cleared it
    assert book.change(e, False, 31.0, "v1", 31.0) == []  # nothing open, nothing to resolve
    assert book.status() == "ok"


def test_resolved_keeps_the_severity_of_its_firing() -> None:
    book = AlertBook("churn")
    book.change(evidence(severity="critical"), True, 1.0, "v1", 1.0)
    (resolved,) = book.change(evidence(severity="warning"), False, 2.0, "v1", 2.0)
    assert resolved.evidence.severity == "critical"


def test_a_new_episode_gets_a_new_id() -> None:
    book = AlertBook("churn")
    first = book.change(evidence(), True, 1.0, "v1", 1.0)[0]
    book.change(evidence(), False, 2.0, "v1", 2.0)
    second = book.change(evidence(), True, 3.0, "v1", 3.0)[0]
    assert second.status == "firing"
    assert second.alert_id != first.alert_id
    assert second.alert_id == alert_id_for("churn", "data_drift", "age", "adwin", 2)


def test_ids_are_stable_across_a_replay() -> None:
    """Two books fed the same observations (a worker and its replay) produce the same ids."""
    steps = [(k, f, a) for a in (True, False, True, False) for k, f in (("data_drift", "age"), ("performance", None))]
    books = [AlertBook("churn"), AlertBook("churn")]
    runs = [
        [
            (a.alert_id, a.status)
            for i, (k, f, act) in enumerate(steps)
            for a in book.change(evidence(k, f), act, float(i), "v1", float(i))
        ]
        for book in books
    ]
    assert runs[0] == runs[1]
    assert len(runs[0]) == 8


def test_keys_are_independent() -> None:
    book = AlertBook("churn")
    a = book.change(evidence("data_drift", "age"), True, 1.0, "v1", 1.0)[0]
    b = book.change(evidence("data_drift", "income"), True, 1.0, "v1", 1.0)[0]
    c = book.change(evidence("data_quality", "age", severity="critical"), True, 1.0, "v1", 1.0)[0]
    assert len({a.alert_id, b.alert_id, c.alert_id}) == 3
    assert len(book.open) == 3
    assert book.status() == "critical"
    book.change(evidence("data_quality", "age"), False, 2.0, "v1", 2.0)
    assert book.status() == "warning"


def test_alerts_carry_the_model_and_version() -> None:
    book = AlertBook("fraud")
    (alert,) = book.change(evidence(), True, 5.0, "2024-06", 5.0)
    assert (alert.model_id, alert.model_version, alert.detected_at) == ("fraud", "2024-06", 5.0)


keys = st.sampled_from(
    [("data_drift", "age"), ("data_drift", "income"), ("performance", None), ("concept_drift", None)]
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(keys, st.booleans(), st.sampled_from(["warning", "critical"])), max_size=200))
def test_alert_book_invariants(steps: list[tuple[tuple[str, str | None], bool, str]]) -> None:
    book = AlertBook("m")
    open_ids: dict[tuple[str, str | None], str] = {}
    fired_ids: list[str] = []
    for i, ((kind, feature), active, severity) in enumerate(steps):
        out = book.change(evidence(kind, feature, severity), active, float(i), "v", float(i))
        assert len(out) <= 1
        for alert in out:
            key = (alert.evidence.kind, alert.evidence.feature)
            assert key == (kind, feature)
            if alert.status == "firing":
                assert key not in open_ids  # never two open episodes for one key
                assert alert.alert_id not in fired_ids  # every episode has its own id
                open_ids[key] = alert.alert_id
                fired_ids.append(alert.alert_id)
            else:
                assert alert.status == "resolved"
                assert open_ids.pop(key) == alert.alert_id  # matches the open firing of that key
        assert {(a.evidence.kind, a.evidence.feature) for a in book.open.values()} == set(open_ids)
        assert {(a.evidence.kind, a.evidence.feature): a.alert_id for a in book.open.values()} == open_ids
        expected = {a.evidence.severity for a in book.open.values()}
        assert book.status() == ("critical" if "critical" in expected else "warning" if expected else "ok")


def test_the_cooldown_is_counted_in_event_time_and_a_held_back_condition_fires_when_it_ends() -> None:
    book = AlertBook("churn", cooldown_s=300.0)
    e = evidence()
    book.change(e, True, 1000.0, "v1", detected_at=5.0)
    book.change(e, False, 1100.0, "v1", detected_at=6.0)  # resolved at event time 1100
    assert book.change(e, True, 1200.0, "v1", detected_at=7.0) == []  # wall clock is irrelevant: 100 s of events
    assert book.due(("data_drift", "age", "adwin")) == 1400.0
    assert book.release(("data_drift", "age", "adwin"), 1399.0, "v1", 8.0) == []
    (fired,) = book.release(("data_drift", "age", "adwin"), 1400.0, "v1", 9.0)
    assert fired.status == "firing" and fired.evidence == e


def test_a_shift_the_other_way_is_not_held_back_by_the_cooldown() -> None:
    book = AlertBook("churn", cooldown_s=300.0)
    up, down = evidence(direction=1), evidence(direction=-1)
    book.change(up, True, 1000.0, "v1", 1.0)
    book.change(up, False, 1100.0, "v1", 2.0)
    assert book.change(up, True, 1150.0, "v1", 3.0) == []  # the same shift again: cooling down
    assert [a.status for a in book.change(down, True, 1160.0, "v1", 4.0)] == ["firing"]  # the other way: at once


def test_a_condition_that_clears_while_it_waits_never_fires() -> None:
    book = AlertBook("churn", cooldown_s=300.0)
    e = evidence()
    book.change(e, True, 1000.0, "v1", 1.0)
    book.change(e, False, 1100.0, "v1", 2.0)
    book.change(e, True, 1200.0, "v1", 3.0)
    book.change(e, False, 1250.0, "v1", 4.0)
    assert book.waiting == {} and book.release(("data_drift", "age", "adwin"), 1500.0, "v1", 5.0) == []


def test_a_held_condition_waits_for_its_release() -> None:
    book = AlertBook("churn", segment={"region": "eu"})
    assert book.change(evidence(), True, 10.0, "v1", 1.0, held=True) == []
    assert [a.status for a in book.release(("data_drift", "age", "adwin"), 20.0, "v1", 2.0)] == ["firing"]

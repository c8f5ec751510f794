"""The checkpoint codec: a restored model continues exactly like one never interrupted."""

from __future__ import annotations

import random
import zlib

import orjson
import pytest

from streams import checkpoint
from streams.settings import Settings
from streams.state import ModelState


def _events(seed: int, n: int, start: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out: list[dict] = []
    for i in range(start, start + n):
        x = rng.gauss(0 if i < 1500 else 1.5, 1)
        late = {"coupon": rng.choice("xy")} if i >= 900 else {}  # a new feature
        out.append({"type": "prediction", "model_id": "m", "prediction_id": f"p{i}", "features":
                    {"x": x, "c": rng.choice("ab"), "gap": None if rng.random() < 0.1 else 1.0, **late},
                    "prediction": int(x > 0), "score": rng.random(), "model_version": "v1",
                    "timestamp": 1000.0 + i, "segment": None})
        if i >= 3:
            out.append({"type": "outcome", "model_id": "m", "prediction_id": f"p{i - 3}",
                        "label": int(rng.random() < 0.8), "timestamp": 1000.0 + i})
    return out


def _run(state: ModelState, events: list[dict]) -> list[tuple[str, str]]:
    fired = []
    for k, wire in enumerate(events):
        state.apply(wire)
        if k % 50 == 0:
            fired += [(a.alert_id, a.status) for a in state.alerts(now=0.0)]
    return fired


def test_restored_state_continues_like_an_uninterrupted_run() -> None:
    settings = Settings()
    first, second = _events(1, 1600), _events(2, 1200, start=1600)
    straight = ModelState.create("m", settings)
    expected = _run(straight, first + second)

    interrupted = ModelState.create("m", settings)
    fired = _run(interrupted, first)
    monitor = interrupted.monitor  # every kind of detector is in the checkpoint
    assert monitor.features["x"].out_of_range is not None and monitor.features["coupon"].new is not None
    assert monitor.classes is not None and monitor.score is not None and monitor.features["x"].windowed.cusum
    restored = checkpoint.loads(checkpoint.dumps(interrupted))
    fired += _run(restored, second)

    assert fired == expected and any(status == "firing" for _, status in fired)
    assert restored.summary(now=0.0) == straight.summary(now=0.0)
    cusum, uninterrupted = (s.monitor.features["x"].windowed.cusum for s in (restored, straight))
    assert cusum is not None and uninterrupted is not None
    assert cusum.sums.tolist() == uninterrupted.sums.tolist() and cusum.fired == uninterrupted.fired
    for name in straight.monitor.features:
        assert restored.monitor.features[name].summary() == straight.monitor.features[name].summary()


def _blob(body: object) -> bytes:
    return zlib.compress(orjson.dumps({"format": checkpoint.FORMAT_VERSION, "body": body}))


@pytest.mark.parametrize("body, reason", [
    ({"__c": "os.system", "v": {}}, "not allowed"),
    ({"__c": "subprocess.Popen", "v": {"args": "rm -rf /"}}, "not allowed"),
    ({"__c": "streams.state.ModelState", "v": {"__class__": 1}}, "not part of"),
    ({"__c": "detectors.windows.RunningMoments", "v": {"evil": 1}}, "not part of"),
    ({"__n": ["object", ""]}, "dtype"),
])
def test_refuses_anything_off_the_allowlist(body: object, reason: str) -> None:
    with pytest.raises(checkpoint.CheckpointError, match=reason):
        checkpoint.loads(_blob(body))


def test_refuses_garbage_and_other_versions() -> None:
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.loads(b"\x80\x04pickle?")
    with pytest.raises(checkpoint.CheckpointError, match="format"):
        checkpoint.loads(zlib.compress(orjson.dumps({"format": 999, "body": None})))


def test_round_trips_awkward_values() -> None:
    value = {("kind", None): [float("inf"), -0.0, 1e308, "__d", {"__t": 1}], "k": (1, "x")}
    assert checkpoint.loads(checkpoint.dumps(value)) == value


def test_a_checkpoint_from_an_older_version_gets_new_fields_defaults() -> None:
    monitor_state = checkpoint.encode(ModelState.create("m", Settings()))
    monitor = monitor_state["v"]["monitor"]["v"]
    del monitor["removed_features"]  # as written before that field existed
    restored = checkpoint.decode(monitor_state)
    assert restored.monitor.removed_features == []


@pytest.mark.parametrize("method", ["ddm", "eddm", "hddm_a", "adwin"])
def test_every_selectable_concept_drift_detector_survives_a_checkpoint(method: str) -> None:
    from detectors.concept_drift import ConceptDriftMonitor

    rng = random.Random(3)
    losses = [float(rng.random() < (0.05 if i < 2000 else 0.3)) for i in range(4000)]
    straight, interrupted = ConceptDriftMonitor(True, method=method), ConceptDriftMonitor(True, method=method)
    for i, loss in enumerate(losses):
        straight.update(loss, float(i))
    for i, loss in enumerate(losses[:2500]):
        interrupted.update(loss, float(i))
    restored = checkpoint.loads(checkpoint.dumps(interrupted))
    for i, loss in enumerate(losses[2500:], 2500):
        restored.update(loss, float(i))
    assert (restored.active, restored.worsening, restored.evidence()) == (straight.active, straight.worsening, straight.evidence())

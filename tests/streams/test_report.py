"""``driftline report``: one self-contained page, opened in a real browser without network, and the same as JSON."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import redis

from scripts.harness.browser import browser, shown
from streams.cli import main
from streams.embedded import EmbeddedRedis
from streams.history import HistoryPolicy
from streams.keys import RedisKeys
from streams.report import render_html, report_document
from tests.streams.test_history import _run, drifting_events


@pytest.fixture
def drifted(redis_server: EmbeddedRedis, unique: str) -> RedisKeys:
    """A model ``churn`` whose feature ``income`` drifted half-way, written as a worker writes it."""
    keys = RedisKeys(f"t{unique}:")
    asyncio.run(_run(redis_server.url, keys, drifting_events(3000, drift_at=1500), chunk=70))
    return keys


def test_the_report_opens_offline_and_shows_the_drift(
    redis_server: EmbeddedRedis, drifted: RedisKeys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLINE_REDIS_URL", redis_server.url)
    monkeypatch.setenv("DRIFTLINE_REDIS_PREFIX", drifted.prefix)
    page_path, data_path = tmp_path / "churn.html", tmp_path / "churn.json"
    assert main(["report", "churn", "--html", str(page_path), "--json", str(data_path)]) == 0
    assert main(["report", "nope", "--html", str(tmp_path / "x.html")]) == 2
    document = json.loads(data_path.read_text())
    assert document["open_alerts"] and document["history"]["points"] and document["recent_alerts"]
    text = page_path.read_text()
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text

    async def look() -> tuple[dict, list[str]]:
        async with browser(tmp_path / "chromium.log") as page:
            await page.goto(page_path.as_uri())
            await page.until("document.body.dataset.ready === '1'")
            found = await shown(page)
            await page.screenshot(tmp_path / "report.png")
            return found, page.requests

    found, requests = asyncio.run(look())
    assert requests == [page_path.as_uri()]  # the file, and nothing else
    assert found["view"] == "model" and found["features"][0] == "income" and found["selected"] == "income"
    assert found["charts"]["metric"]["points"] >= 40 and found["charts"]["metric"]["markers"] >= 1
    assert found["charts"]["distribution"]["points"] == 500 and found["charts"]["distribution"]["paths"] == 40
    assert found["charts"]["feature-score"]["points"] >= 40
    assert found["alerts"] >= 1 and found["evidence"] >= 1
    print(f"report screenshot: {tmp_path / 'report.png'}")


def test_the_report_is_the_same_content_as_data(redis_server: EmbeddedRedis, drifted: RedisKeys) -> None:
    client = redis.Redis.from_url(redis_server.url)
    document = report_document(client, drifted, "churn", HistoryPolicy(60.0, 3600.0, 10), now=0.0)
    assert document is not None
    assert set(document) == {
        "generated_at",
        "model",
        "features",
        "segments",
        "open_alerts",
        "distributions",
        "history",
        "recent_alerts",
    }
    assert document["generated_at"] == "1970-01-01T00:00:00.000Z"
    assert [a["feature"] for a in document["open_alerts"] if a["kind"] == "data_drift"] == ["income"]
    page = render_html({**document, "model": {**document["model"], "model_id": "</script><b>x"}})
    assert "</script><b>" not in page.split('type="application/json">')[1].split("</script>")[0]

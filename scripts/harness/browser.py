"""A real headless Chromium driven over the DevTools protocol (aiohttp's websocket client): no new dependency.

It records every request the page makes (``Network.requestWillBeSent``), and
runs with a dead proxy and a host resolver that finds nothing, so a page that
tried to reach anything but loopback or its own file would fail, and show it.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from streams.launch import ChildProcess, wait_for

WIDTH, HEIGHT = 1400, 1000


def chromium_binary() -> str:
    """Debian's ``chromium`` (``scripts/dev.sh`` installs it)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError("chromium not found: scripts/dev.sh installs Debian's chromium package")
    return found


class Page:
    """One browser tab: navigate, evaluate, screenshot; ``requests`` lists every URL it asked for."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.requests: list[str] = []
        self.console: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            elif data.get("method") == "Network.requestWillBeSent":
                self.requests.append(data["params"]["request"]["url"])
            elif data.get("method") == "Runtime.exceptionThrown":
                self.console.append(json.dumps(data["params"]["exceptionDetails"])[:2000])

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        key = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[key] = future
        await self.ws.send_str(json.dumps({"id": key, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (JSON-serialisable)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def until(self, expression: str, timeout_s: float = 30.0) -> Any:
        """Wait until ``expression`` is truthy; return its value."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            try:
                value = await self.evaluate(expression)
            except RuntimeError:
                value = None
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{expression!r} not true after {timeout_s} s; page errors: {self.console}")
            await asyncio.sleep(0.2)

    async def screenshot(self, path: Path) -> Path:
        data = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))
        return path


@asynccontextmanager
async def browser(log_path: Path) -> AsyncIterator[Page]:
    """A headless Chromium with one page, its network limited to loopback."""
    profile = Path(tempfile.mkdtemp(prefix="driftline-chromium-"))
    command = [
        chromium_binary(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={WIDTH},{HEIGHT}",
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    child = ChildProcess(command, log_path=log_path, stop_timeout_s=5.0).start()
    try:
        port_file = profile / "DevToolsActivePort"
        wait_for(lambda: True if port_file.exists() and port_file.read_text().strip() else None, 30, "chromium")
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with session.ws_connect(url, max_msg_size=0) as ws:
                page = Page(ws)
                for method in ("Network.enable", "Page.enable", "Runtime.enable"):
                    await page.send(method)
                await page.send(
                    "Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False
                )
                try:
                    yield page
                finally:
                    page.reader.cancel()
    finally:
        child.stop()
        shutil.rmtree(profile, ignore_errors=True)


# What a page shows, read in the page: the tests' one expression.
SHOWN = """JSON.stringify({
  view: document.body.dataset.view, ready: document.body.dataset.ready,
  models: [...document.querySelectorAll('#models tbody tr')].map(r => r.dataset.model),
  sparklines: [...document.querySelectorAll('#models svg.sparkline')].map(s => +s.dataset.points),
  features: [...document.querySelectorAll('#features tbody tr')].map(r => r.dataset.feature),
  charts: Object.fromEntries([...document.querySelectorAll('svg.chart')].map(s => [s.dataset.chart,
    {points: +s.dataset.points, markers: +(s.dataset.markers || 0), paths: s.querySelectorAll('path, rect').length}])),
  selected: (document.getElementById('feature-panel') || {dataset: {}}).dataset.feature,
  alerts: document.querySelectorAll('#alert-list li[data-alert]').length,
  evidence: document.querySelectorAll('.evidence').length,
})"""


async def shown(page: Page) -> dict[str, Any]:
    """What the dashboard (or a report) shows now."""
    found: dict[str, Any] = json.loads(await page.evaluate(SHOWN))
    return found

"""Start ``driftline worker`` as a child process and wait until it owns partitions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Self

import orjson
import redis

from streams.embedded import die_with_parent
from streams.errors import EmbeddedServerError
from streams.keys import RedisKeys


class WorkerProcess:
    """One ``driftline worker`` child with the given ``DRIFTLINE_*`` settings.

    ``ready()`` waits until the worker has announced its partition assignment
    in Redis, so events produced after it are consumed promptly.
    """

    def __init__(self, env: dict[str, str], log_path: Path | None = None) -> None:
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Self:
        self._log = open(self.log_path, "ab") if self.log_path else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker"], env=self.env,
            stdout=self._log or subprocess.DEVNULL, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
            start_new_session=True,  # stopped in order by the parent, not all at once by a Ctrl-C
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self, timeout_s: float = 60.0) -> Self:
        """Block until this worker appears in the Redis worker registry."""
        client = redis.Redis.from_url(self.env["DRIFTLINE_REDIS_URL"])
        keys = RedisKeys(self.env.get("DRIFTLINE_REDIS_PREFIX", "driftline:"))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive:
                raise EmbeddedServerError(f"worker exited with {self.process.returncode if self.process else None}"
                                          f"{self._tail()}")
            for raw in client.hvals(keys.workers):
                if orjson.loads(raw)["pid"] == self.pid:
                    return self
            time.sleep(0.1)
        raise EmbeddedServerError(f"worker not ready after {timeout_s:.0f} s{self._tail()}")

    def _tail(self) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "; log ends with:\n" + self.log_path.read_text(errors="replace")[-3000:]

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM (a clean shutdown), then SIGKILL if it does not exit in time."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log:
            self._log.close()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Self:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["WorkerProcess", "die_with_parent"]

"""Child processes, and waiting for them: one mechanism for the embedded servers, workers and the scripts' helpers.

Every :class:`ChildProcess` gets its own session (a terminal's Ctrl-C reaches
us, and we stop our children in order), ``PR_SET_PDEATHSIG`` (Linux SIGTERMs it
when the thread that started it dies) and an ``atexit`` hook, so it never
outlives us. Its output goes to a log file (appended to), or to a pipe.
:class:`WorkerProcess` is ``driftline worker`` as such a child; :func:`wait_for`
is the one polling loop, with a deadline and stall detection.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Self, TypeVar

import orjson

from streams.errors import EmbeddedServerError
from streams.keys import RedisKeys
from streams.redis_client import SyncClient, sync_client
from streams.settings import Settings

T = TypeVar("T")

_RUNNING: set[ChildProcess] = set()


def die_with_parent() -> None:
    """``preexec_fn``: have Linux SIGTERM the child when the parent (thread) dies."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG


def wait_for(
    check: Callable[[], T | None],
    timeout_s: float,
    what: str,
    *,
    every_s: float = 0.05,
    progress: Callable[[], object] | None = None,
    stall_s: float | None = None,
) -> T:
    """Poll ``check`` until it returns something other than None, and return that.

    Raises :class:`TimeoutError` after ``timeout_s``, or earlier when ``progress``
    (any value that changes while things move) has not changed for ``stall_s``.
    The message names ``what`` and the last progress value. An exception from
    ``check`` (a child that exited, say) goes through at once.

    >>> wait_for(lambda: 42, 1.0, "the answer")
    42
    >>> wait_for(lambda: None, 5.0, "nothing", progress=lambda: 7, stall_s=0.1)
    Traceback (most recent call last):
    ...
    TimeoutError: nothing: no progress for 0.1 s (at 7)
    """
    started = time.monotonic()
    last: object = None
    moved = started
    while True:
        found = check()
        if found is not None:
            return found
        now = time.monotonic()
        current = progress() if progress is not None else None
        if current != last:
            last, moved = current, now
        elif progress is not None and stall_s is not None and now - moved > stall_s:
            raise TimeoutError(f"{what}: no progress for {stall_s:g} s (at {current})")
        if now - started > timeout_s:
            at = f" (at {current})" if progress is not None else ""
            raise TimeoutError(f"{what}: not done after {timeout_s:g} s{at}")
        time.sleep(every_s)


class ChildProcess:
    """One child process: ``command`` with ``env`` on top of ours, its output appended to ``log_path``.

    With ``capture_stdout``, standard output goes to a pipe read by
    :meth:`communicate` (standard error still goes to the log). ``start()``
    after ``stop()`` starts the same command again.
    """

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        *,
        capture_stdout: bool = False,
        stop_timeout_s: float = 20.0,
    ) -> None:
        self.command = list(command)
        self.env = {**os.environ, **env} if env is not None else None
        self.log_path = Path(log_path) if log_path is not None else None
        self.capture_stdout = capture_stdout
        self.stop_timeout_s = stop_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Self:
        """Start the command, unless it is running already."""
        if self.alive:
            return self
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        log: Any = self._log if self._log is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if self.capture_stdout else log,
            stderr=log if self.capture_stdout else subprocess.STDOUT,
            preexec_fn=die_with_parent,
            start_new_session=True,  # stopped in order by us, not all at once by a terminal's Ctrl-C
        )
        _RUNNING.add(self)
        return self

    @property
    def pid(self) -> int:
        """The process id (of the last start)."""
        if self.process is None:
            raise EmbeddedServerError(f"{self.command[0]} was never started")
        return self.process.pid

    @property
    def alive(self) -> bool:
        """Whether the process is running."""
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: killed by that signal), None while running or never started."""
        return self.process.poll() if self.process is not None else None

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the log, or a note that there is none."""
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_bytes()[-chars:].decode("utf-8", "replace")

    def communicate(self, timeout_s: float) -> str:
        """Wait for the process to exit and return its standard output (with ``capture_stdout``)."""
        if self.process is None:
            raise EmbeddedServerError(f"{self.command[0]} was never started")
        out, _ = self.process.communicate(timeout=timeout_s)
        return out.decode("utf-8", "replace") if out else ""

    def stop(self, timeout_s: float | None = None) -> int | None:
        """SIGTERM (a clean shutdown), then SIGKILL if it has not exited in time; return the exit code."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(self.stop_timeout_s if timeout_s is None else timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_log()
        _RUNNING.discard(self)
        return self.returncode

    def kill(self) -> None:
        """SIGKILL: a crash. The log stays open until :meth:`stop`."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _close_log(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def worker_registry(client: SyncClient, keys: RedisKeys) -> dict[int, list[int]]:
    """The workers that announced themselves in Redis: pid -> the partitions it owns."""
    entries = (orjson.loads(raw) for raw in client.hvals(keys.workers))
    return {int(doc["pid"]): list(doc.get("partitions") or []) for doc in entries}


class WorkerProcess(ChildProcess):
    """One ``driftline worker`` child with the given ``DRIFTLINE_*`` settings.

    ``ready()`` waits until the worker has announced its partition assignment
    in Redis, so events produced after it are consumed promptly.
    """

    def __init__(self, env: Mapping[str, str], log_path: Path | None = None, command: str = "worker") -> None:
        # command: "worker", or another driftline command that runs until SIGTERM ("notify")
        super().__init__([sys.executable, "-m", "streams", command], env, log_path)
        assert self.env is not None
        self.keys = RedisKeys(self.env.get("DRIFTLINE_REDIS_PREFIX", "driftline:"))

    def settings(self) -> Settings:
        """The settings this child reads."""
        assert self.env is not None
        prefix = "DRIFTLINE_"
        fields: dict[str, Any] = {k[len(prefix) :].lower(): v for k, v in self.env.items() if k.startswith(prefix)}
        return Settings(**fields)  # strings, as from the environment: pydantic parses them

    def ready(self, timeout_s: float = 60.0) -> Self:
        """Block until this worker appears in the Redis worker registry (one server, Cluster or Sentinel)."""
        with sync_client(self.settings()) as client:

            def registered() -> bool | None:
                if not self.alive:
                    raise EmbeddedServerError(
                        f"worker exited with {self.returncode}; log ends with:\n{self.log_tail()}"
                    )
                return True if self.pid in worker_registry(client, self.keys) else None

            try:
                wait_for(registered, timeout_s, "worker ready", every_s=0.1)
            except TimeoutError as exc:
                raise EmbeddedServerError(f"{exc}; log ends with:\n{self.log_tail()}") from exc
        return self


@atexit.register
def _stop_all() -> None:
    for child in list(_RUNNING):
        child.stop(timeout_s=5.0)


__all__ = ["ChildProcess", "WorkerProcess", "die_with_parent", "wait_for", "worker_registry"]

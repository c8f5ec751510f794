"""More real servers for tests and demos: a 3-master Redis Cluster, a Sentinel, Prometheus and Alertmanager.

Like :mod:`streams.embedded`, each is a child process on 127.0.0.1 that dies
with us. The Redis ones run the same ``redis-server`` binary as
:class:`~streams.embedded.EmbeddedRedis`; Prometheus and Alertmanager are
Debian's ``prometheus`` and ``prometheus-alertmanager`` packages
(``scripts/dev.sh`` installs them when missing).
"""

from __future__ import annotations

import shutil
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Self

import redis
import yaml

from streams.embedded import EmbeddedRedis, LocalServer, bind_port, free_port, redis_server_binary
from streams.errors import EmbeddedServerError

CLUSTER_SLOTS = 16384


def _binary(*names: str) -> Path:
    for name in names:
        if found := shutil.which(name):
            return Path(found)
    raise EmbeddedServerError(
        f"{names[0]} not found: apt-get install prometheus prometheus-alertmanager (scripts/dev.sh installs them)"
    )


def prometheus_binary() -> Path:
    """Debian's ``prometheus``."""
    return _binary("prometheus")


def alertmanager_binary() -> Path:
    """Debian's ``prometheus-alertmanager`` (upstream calls it ``alertmanager``)."""
    return _binary("prometheus-alertmanager", "alertmanager")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(100):
        port = free_port()
        if port + 10000 < 65536 and bind_port(port + 10000) is not None:
            return port
    raise EmbeddedServerError("no free port pair for a Redis Cluster node")


class _ClusterNode(EmbeddedRedis):
    def _command(self) -> list[str]:
        return super()._command() + [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(self.data_dir / "nodes.conf"),
            "--cluster-node-timeout",
            "2000",
        ]


class EmbeddedRedisCluster:
    """Three Redis masters sharing the 16384 slots; ``url`` is a ``redis+cluster://`` URL of all three.

    Started by hand (slots assigned, nodes introduced) rather than with
    ``redis-cli --cluster create``, which not every install ships.
    """

    start_timeout = 30.0

    def __init__(self, data_dir: Path | None = None, log_dir: Path | None = None, masters: int = 3) -> None:
        self.root = Path(data_dir or tempfile.mkdtemp(prefix="driftline-cluster-"))
        self.logs = Path(log_dir) if log_dir is not None else None
        self.masters = masters
        self.nodes: list[_ClusterNode] = []
        self.url = ""  # set by start(): the nodes' ports are chosen as they start

    def start(self) -> Self:
        try:
            for i in range(self.masters):
                self.nodes.append(self._start_node(i))
            self._form()
        except BaseException:
            self.stop()
            raise
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)
        return self

    def _start_node(self, i: int, attempts: int = 5) -> _ClusterNode:
        """Node ``i`` on a free port pair chosen now: another process can take a port chosen earlier."""
        log = self.logs / f"redis-cluster-{i}.log" if self.logs else None
        for attempt in range(attempts):
            node = _ClusterNode(cluster_port(), self.root / f"node-{i}", log_path=log)
            if node.port in {n.port for n in self.nodes}:
                continue
            try:
                return node.start()
            except EmbeddedServerError:
                node.stop()
                if attempt == attempts - 1:
                    raise
        raise EmbeddedServerError(f"no free port pair for Redis Cluster node {i}")

    def _form(self) -> None:
        clients = [redis.Redis(port=n.port, socket_timeout=5) for n in self.nodes]
        share = CLUSTER_SLOTS // len(clients)
        for i, client in enumerate(clients):
            last = CLUSTER_SLOTS - 1 if i == len(clients) - 1 else (i + 1) * share - 1
            client.execute_command("CLUSTER ADDSLOTS", *range(i * share, last + 1))  # type: ignore[no-untyped-call]
        for node in self.nodes[1:]:
            clients[0].execute_command("CLUSTER MEET", "127.0.0.1", node.port)  # type: ignore[no-untyped-call]
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            infos = [c.execute_command("CLUSTER INFO") for c in clients]  # type: ignore[no-untyped-call]
            if all(_cluster_ok(info, len(clients)) for info in infos):
                return
            time.sleep(0.1)
        raise EmbeddedServerError(f"the Redis Cluster did not form in {self.start_timeout:.0f} s")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cluster_ok(info: dict[str, object], masters: int) -> bool:
    """Whether CLUSTER INFO (as redis-py parses it) says every slot is served and every master is known."""
    return info.get("cluster_state") == "ok" and str(info.get("cluster_known_nodes")) == str(masters)


class EmbeddedSentinel(LocalServer):
    """A Redis Sentinel watching ``master`` under the name ``name``; ``url`` is a ``redis+sentinel://`` URL."""

    def __init__(
        self, master: EmbeddedRedis, name: str = "mymaster", port: int | None = None, log_path: Path | None = None
    ) -> None:
        super().__init__(port, log_path)
        self.master, self.name = master, name
        self.config = Path(tempfile.mkdtemp(prefix="driftline-sentinel-")) / "sentinel.conf"
        self.url = f"redis+sentinel://127.0.0.1:{self.port}/{name}/0"

    def _command(self) -> list[str]:
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.config.parent}\n"
            f"sentinel monitor {self.name} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {self.name} 2000\n"
        )
        return [str(redis_server_binary()), str(self.config), "--sentinel"]

    def _ready(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1) as client:
                return client.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", self.name) is not None
        except redis.RedisError:
            return False


class EmbeddedPrometheus(LocalServer):
    """Prometheus scraping ``targets`` (``host:port`` of workers' web ports) every ``scrape_interval_s``."""

    def __init__(
        self,
        targets: list[str],
        scrape_interval_s: float = 1.0,
        port: int | None = None,
        data_dir: Path | None = None,
        log_path: Path | None = None,
    ) -> None:
        super().__init__(port, log_path)
        self.targets, self.scrape_interval_s = targets, scrape_interval_s
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="driftline-prometheus-"))
        self.url = f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        interval = f"{int(self.scrape_interval_s * 1000)}ms"
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": [{"job_name": "driftline", "static_configs": [{"targets": self.targets}]}],
        }
        path = self.data_dir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        return [
            str(prometheus_binary()),
            f"--config.file={path}",
            f"--storage.tsdb.path={self.data_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]

    def _ready(self) -> bool:
        return _http_ok(f"{self.url}/-/ready")


class EmbeddedAlertmanager(LocalServer):
    """Alertmanager without clustering; with ``webhook_url`` it notifies there (resolved too), grouped per alert."""

    def __init__(
        self,
        webhook_url: str | None = None,
        port: int | None = None,
        data_dir: Path | None = None,
        log_path: Path | None = None,
    ) -> None:
        super().__init__(port, log_path)
        self.webhook_url = webhook_url
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="driftline-alertmanager-"))
        self.url = f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        receiver: dict[str, object] = {"name": "default"}
        if self.webhook_url:
            receiver["webhook_configs"] = [{"url": self.webhook_url, "send_resolved": True}]
        config = {
            "route": {
                "receiver": "default",
                "group_by": ["alert_id"],
                "group_wait": "0s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [receiver],
        }
        path = self.data_dir / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config))
        return [
            str(alertmanager_binary()),
            f"--config.file={path}",
            f"--storage.path={self.data_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
        ]

    def _ready(self) -> bool:
        return _http_ok(f"{self.url}/-/ready")


__all__ = [
    "EmbeddedAlertmanager",
    "EmbeddedPrometheus",
    "EmbeddedRedisCluster",
    "EmbeddedSentinel",
    "alertmanager_binary",
    "prometheus_binary",
]

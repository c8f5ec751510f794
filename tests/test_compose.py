"""docker-compose.yml and the Dockerfile, checked without Docker.

They are the production shape users copy, so what they promise is pinned here:
pinned images, only real DRIFTLINE_* settings, workers wired to the compose
services, health-gated startup and persistent Redis.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

# An explicit version: at least major.minor.patch (v2.53.2 too), optionally a variant
# suffix (3.9.1, 7.2.7-alpine, 3.11.11-slim-bookworm), or an immutable digest.
PINNED_TAG = re.compile(r"^v?\d+\.\d+\.\d+([.-][A-Za-z0-9._-]+)?$")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
SETTING_ENV = re.compile(r"\bDRIFTLINE_[A-Z0-9_]+\b")


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict:
    return compose()["services"]


def environment(service: dict) -> dict[str, str]:
    """A service's environment as a dict, whichever of the two compose forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        env = {p[0]: (p[1] if len(p) > 1 else None) for p in pairs}
    return {str(k): (None if v is None else str(v)) for k, v in env.items()}


def command_args(service: dict) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]


def is_pinned(image: str) -> bool:
    if DIGEST.search(image):
        return True
    name, _, tag = image.rpartition(":")
    # "host:5000/name" has a colon before the last slash: that is a port, not a tag.
    if not name or "/" in tag:
        return False
    return tag != "latest" and bool(PINNED_TAG.match(tag))


def setting_env_names() -> set[str]:
    prefix = Settings.model_config["env_prefix"]
    return {(prefix + name).upper() for name in Settings.model_fields}


def dockerfile_base_images() -> list[str]:
    """Images named by FROM lines, leaving out references to earlier build stages."""
    stages: set[str] = set()
    images = []
    for line in DOCKERFILE.read_text().splitlines():
        words = line.split()
        if not words or words[0].upper() != "FROM":
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        image = args[0]
        if image not in stages:
            images.append(image)
        if len(args) >= 3 and args[1].upper() == "AS":
            stages.add(args[2])
    return images


def test_compose_parses_and_has_the_services():
    doc = compose()
    assert isinstance(doc, dict)
    assert {"kafka", "redis", "worker", "notify", "prometheus", "alertmanager", "grafana"} <= set(doc["services"])


@pytest.mark.parametrize(
    "image, pinned",
    [
        ("apache/kafka:3.9.1", True),
        ("redis:7.2.7-alpine", True),
        ("python:3.11.11-slim-bookworm", True),
        ("prom/prometheus:v2.53.2", True),
        ("prom/prometheus:v2", False),
        ("registry.local:5000/driftline:0.1.0", True),
        ("redis@sha256:" + "a" * 64, True),
        ("redis", False),
        ("redis:latest", False),
        ("redis:7", False),
        ("redis:7-alpine", False),
        ("redis:alpine", False),
        ("registry.local:5000/driftline", False),
    ],
)
def test_pin_rule(image, pinned):
    assert is_pinned(image) is pinned


@pytest.mark.parametrize("name", sorted(services()))
def test_every_image_is_pinned(name):
    service = services()[name]
    assert "image" in service or "build" in service, f"{name}: neither image nor build"
    if "image" in service:
        assert is_pinned(service["image"]), f"{name}: image {service['image']!r} is not pinned to a version"


def test_worker_image_tag_is_the_package_version():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    worker = services()["worker"]
    build = worker["build"]
    assert (build if isinstance(build, str) else build.get("context")) == "."
    assert worker["image"] == f"driftline:{version}"


def test_every_driftline_variable_is_a_real_setting():
    known = setting_env_names()
    # Every mention anywhere in the file (environment, command, comments) ...
    mentioned = set(SETTING_ENV.findall(COMPOSE_FILE.read_text()))
    # ... and every key of every environment block.
    for service in services().values():
        mentioned |= {k for k in environment(service) if k.upper().startswith("DRIFTLINE_")}
    assert mentioned, "the compose file configures no DRIFTLINE_* setting"
    unknown = sorted(m for m in mentioned if m.upper() not in known)
    assert not unknown, f"not fields of streams.settings.Settings: {unknown}"


def test_worker_settings_parse():
    """The worker's DRIFTLINE_* values are accepted by Settings itself."""
    env = environment(services()["worker"])
    prefix = Settings.model_config["env_prefix"]
    values = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
    settings = Settings(**values)
    assert settings.partitions == int(env["DRIFTLINE_PARTITIONS"])


def test_worker_points_at_the_compose_kafka():
    svcs = services()
    bootstrap = environment(svcs["worker"])["DRIFTLINE_KAFKA_BOOTSTRAP"]
    advertised = environment(svcs["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    advertised_hostports = {urlsplit(listener).netloc for listener in advertised.split(",")}
    for hostport in bootstrap.split(","):
        host, _, port = hostport.strip().rpartition(":")
        assert host == "kafka", f"bootstrap {hostport!r} is not the compose kafka service"
        assert port.isdigit()
        assert f"{host}:{port}" in advertised_hostports, (
            f"bootstrap {hostport!r} is not a listener kafka advertises ({advertised})"
        )


def test_worker_points_at_the_compose_redis():
    url = urlsplit(environment(services()["worker"])["DRIFTLINE_REDIS_URL"])
    assert url.scheme == "redis"
    assert url.hostname == "redis"
    assert (url.port or 6379) == 6379


@pytest.mark.parametrize("name", ["kafka", "redis"])
def test_healthchecks(name):
    check = services()[name].get("healthcheck")
    assert check, f"{name} has no healthcheck"
    assert not check.get("disable", False)
    test = check["test"]
    assert test and test not in (["NONE"], "NONE")


def test_kafka_is_single_node_kraft():
    kafka = services()["kafka"]
    env = environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(env["KAFKA_NODE_ID"] + "@")
    listener_names = {urlsplit(entry).scheme.upper() for entry in env["KAFKA_LISTENERS"].split(",")}
    protocol_map = dict(entry.split(":") for entry in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert listener_names <= set(protocol_map)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listener_names
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in listener_names
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_NUM_PARTITIONS"] == environment(services()["worker"])["DRIFTLINE_PARTITIONS"]
    # Host clients use the EXTERNAL listener, advertised as localhost on the published port.
    assert "EXTERNAL://localhost:29092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "29092:29092" in [str(p) for p in kafka.get("ports", [])]
    # The broker's data lives on a named volume at its log directory.
    mounts = {v.split(":")[1]: v.split(":")[0] for v in kafka["volumes"]}
    assert mounts.get(env["KAFKA_LOG_DIRS"]) in compose()["volumes"]


def test_redis_is_append_only_and_persistent():
    redis = services()["redis"]
    args = command_args(redis)
    assert args and args[0] == "redis-server"
    assert "--appendonly" in args and args[args.index("--appendonly") + 1] == "yes"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in redis["volumes"]}
    assert mounts.get("/data") in compose()["volumes"], "redis /data is not on a named volume"


def test_worker_waits_for_healthy_dependencies():
    depends = services()["worker"]["depends_on"]
    assert isinstance(depends, dict), "depends_on must use the long form to wait for health"
    for dep in ("kafka", "redis"):
        assert depends[dep]["condition"] == "service_healthy"


def test_worker_is_scalable():
    worker = services()["worker"]
    assert worker["command"] in ("worker", ["worker"])
    assert worker["deploy"]["replicas"] >= 2
    # A fixed name or a published port would make `--scale worker=N` fail.
    assert "container_name" not in worker
    assert not worker.get("ports")
    assert worker["restart"] == "unless-stopped"
    assert worker["stop_grace_period"] == "30s"


def test_dockerfile_base_image_is_pinned():
    images = dockerfile_base_images()
    assert images, "Dockerfile has no FROM"
    for image in images:
        assert is_pinned(image), f"Dockerfile base image {image!r} is not pinned to a version"


def test_dockerfile_runs_the_worker_as_non_root():
    text = DOCKERFILE.read_text()
    users = [line.split()[1] for line in text.splitlines() if line.split()[:1] == ["USER"]]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["driftline"]' in text
    assert 'CMD ["worker"]' in text
    # The console script the entrypoint names exists.
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "driftline" in scripts
    # Runtime install only: no extras (dev/test/embedded) in the image.
    assert not re.search(r"pip install[^\n]*\.\[", text)

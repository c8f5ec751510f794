"""Redis URLs select one server, a Cluster or Sentinel; a Sentinel-managed master serves driftline's writes."""

from __future__ import annotations

import asyncio

import pytest
import redis

from streams.embedded import EmbeddedRedis
from streams.embedded_ops import EmbeddedSentinel
from streams.errors import ConfigurationError
from streams.keys import RedisKeys
from streams.redis_client import RedisTarget, async_client, sync_client
from streams.redis_state import RedisStateWriter
from streams.settings import Settings
from streams.state import ModelState
from streams.status import status_rows
from tests.streams.feeding import feed, prediction


@pytest.mark.parametrize(
    "url, mode, expected",
    [
        ("redis://127.0.0.1:6379/0", "auto", ("standalone", ((("127.0.0.1", 6379),)), 0, None)),
        ("rediss://u:p@cache/3", "auto", ("standalone", (("cache", 6379),), 3, None)),
        ("redis+cluster://a:7000,b:7001", "auto", ("cluster", (("a", 7000), ("b", 7001)), 0, None)),
        ("redis://a:7000", "cluster", ("cluster", (("a", 7000),), 0, None)),
        ("redis+sentinel://s1,s2:26380/cache/1", "auto", ("sentinel", (("s1", 26379), ("s2", 26380)), 1, "cache")),
        ("redis+sentinel://s1:26379", "auto", ("sentinel", (("s1", 26379),), 0, "mymaster")),
        ("redis://[::1]:6380/0", "auto", ("standalone", (("::1", 6380),), 0, None)),
    ],
)
def test_the_url_or_the_setting_selects_the_deployment(url: str, mode: str, expected: tuple) -> None:
    target = RedisTarget.parse(url, mode)
    assert (target.mode, target.nodes, target.db, target.master) == expected


def test_credentials_and_options_reach_every_node() -> None:
    target = RedisTarget.parse("rediss+cluster://app:s%3Acret@a:7000,b:7001/?ssl_ca_certs=/ca.pem")
    assert (target.username, target.password, target.tls) == ("app", "s:cret", True)
    assert target.node_url("b", 7001) == "rediss://app:s:cret@b:7001/?ssl_ca_certs=/ca.pem"


@pytest.mark.parametrize("url", ["http://x:1", "redis+cluster://", "redis://h:1/x/y", "memcached://h"])
def test_a_bad_url_is_a_configuration_error_without_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RedisTarget.parse(url.replace("//", "//user:hunter2@", 1) if "//" in url else url)
    assert "hunter2" not in str(caught.value)


def test_a_sentinel_url_reaches_the_master_it_names(tmp_path, unique: str) -> None:
    keys = RedisKeys(f"t{unique}:")
    with (
        EmbeddedRedis(log_path=tmp_path / "master.log") as master,
        EmbeddedSentinel(master, "driftline-main", log_path=tmp_path / "sentinel.log") as sentinel,
    ):
        settings = Settings(redis_url=sentinel.url, model_probation_events=1)
        state = ModelState.create("churn", settings)
        feed(state, [prediction(str(i), 100.0 + i, model_id="churn") for i in range(30)], settings)

        async def write() -> None:
            client = async_client(settings)
            await RedisStateWriter(client, keys, stream_maxlen=10).write([state], [], now=200.0)
            await client.aclose()

        asyncio.run(write())
        assert status_rows(sync_client(settings), keys)[0]["predictions"] == "30"
        with redis.Redis(port=master.port) as direct:  # the write landed on the master the sentinel names
            assert direct.hget(keys.model("churn"), "predictions") == b"30"

"""lifespan_signals.W040: a Redis channel layer's socket_timeout within channels_redis' 5 s
blocking receive."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings

from lifespan_signals.checks import check_channel_layers

CORE = "channels_redis.core.RedisChannelLayer"


def layers(*hosts, backend=CORE):
    return {"default": {"BACKEND": backend, "CONFIG": {"hosts": list(hosts)}}}


def test_w040_a_socket_timeout_within_the_blocking_receive():
    with override_settings(
        CHANNEL_LAYERS=layers({"address": "redis://r:6379", "socket_timeout": 5})
    ):
        (warning,) = check_channel_layers()
    assert warning.id == "lifespan_signals.W040"
    assert warning.msg == (
        "CHANNEL_LAYERS['default']['CONFIG']['hosts'][0]'s socket_timeout should be longer than "
        "channels_redis' 5 s blocking receive, not 5: an idle consumer's read times out "
        '("Timeout reading from ...") and the consumer dies.'
    )
    assert warning.hint == (
        "Remove socket_timeout (the lifespan then gives the host 15 s), or set it above 5, e.g. 15."
    )


def test_w040_reads_a_urls_query_too():
    with override_settings(CHANNEL_LAYERS=layers("redis://r:6379/0?socket_timeout=2")):
        (warning,) = check_channel_layers()
    assert "not '2'" in warning.msg


@pytest.mark.parametrize(
    "setting",
    [
        layers("redis://r:6379"),  # unset: the lifespan's safe default
        layers({"address": "redis://r:6379", "socket_timeout": 15}),
        layers({"address": "redis://r:6379", "socket_timeout": None}),
        layers(("r", 6379)),
        layers({"address": "redis://r:6379", "socket_timeout": 1}, backend="x.OtherLayer"),
        {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
        {},
    ],
)
def test_no_w040_otherwise(setting):
    with override_settings(CHANNEL_LAYERS=setting):
        assert check_channel_layers() == []


def test_manage_py_check_shows_w040():
    out = StringIO()
    with override_settings(CHANNEL_LAYERS=layers({"address": "redis://r", "socket_timeout": 3})):
        call_command("check", stdout=out, stderr=out)
    assert "(lifespan_signals.W040)" in out.getvalue()

"""The channel-layer project: consumers in a group, views that send to it (async and sync), on
a real Redis when ``LIFESPAN_TEST_REDIS`` names one, else on Channels' in-memory layer."""

import os

from tests.projects.serverapp import settings as serverapp_settings
from tests.settings import *  # noqa: F403
from tests.settings import env, parse_timeout

DATABASES: dict[str, dict[str, str]] = {}
INSTALLED_APPS = ["lifespan_signals", "tests.projects.layersapp"]
ROOT_URLCONF = "tests.projects.layersapp.urls"
ASGI_APPLICATION = "tests.projects.layersapp.asgi.application"

_BACKENDS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}
_REDIS = env("LIFESPAN_TEST_REDIS")
if _REDIS:
    # Named per process, so that the tests tell the processes' connections apart in CLIENT LIST.
    _HOST: dict[str, object] = {"address": _REDIS, "client_name": f"pid-{os.getpid()}"}
    if (_TIMEOUT := env("LIFESPAN_TEST_REDIS_SOCKET_TIMEOUT")) is not None:
        _HOST["socket_timeout"] = float(_TIMEOUT)
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": _BACKENDS[env("LIFESPAN_TEST_LAYER") or "core"],
            "CONFIG": {"hosts": [_HOST]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

LOGGING = {
    **serverapp_settings.LOGGING,
    "loggers": {
        **serverapp_settings.LOGGING["loggers"],
        # One DEBUG line per step: the tests read "shutdown layer default" from it.
        "lifespan_signals.lifespan.steps": {
            "handlers": ["stderr"],
            "level": "DEBUG",
            "propagate": False,
        },
    },
}

if (_shutdown := env("LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT")) is not None:
    LIFESPAN_SIGNALS_SHUTDOWN_TIMEOUT = parse_timeout(_shutdown)

"""p13: Redis connections per process for 1 000 ``group_send`` calls made from sync code through
``async_to_sync``: ours (the lifespan's layer, on the server's loop) against stock Channels.

On a private ``redis-server`` (``tests.harness.redis``), with the tests' channel-layer project
(``tests.projects.layersapp``) under uvicorn: its sync view sends 1 000 times; ``CLIENT LIST``
counts the server process's open connections before and after, ``INFO stats`` the connections
opened meanwhile. Then the same from a management command: a ``LifespanCommand`` against a plain
``BaseCommand``.
"""

from __future__ import annotations

import json
import os
import subprocess

from bench.report import Row
from tests.harness import catalogue
from tests.harness.probes import REPO_ROOT, get_json
from tests.harness.redis import Redis, redis_server
from tests.harness.servers import ServerProcess

SENDS = 1000
SETTINGS = "tests.projects.layersapp.settings"
APPS = {
    "ours": ("tests.projects.layersapp.asgi:application", ()),
    "stock": ("tests.projects.layersapp.asgi:stock", ("--lifespan", "off")),
}
COMMANDS = {"ours": "layersend", "stock": "layersend_stock"}


def sync_view(redis: Redis, app: str, options: tuple[str, ...]) -> tuple[int, int, int]:
    """(open before, open after, opened meanwhile) for the server process's connections."""
    env = {"LIFESPAN_TEST_REDIS": redis.url, "PYTHONDEVMODE": None}
    with ServerProcess.of(catalogue.UVICORN, *options, settings=SETTINGS, app=app, env=env) as proc:
        proc.wait_ready("/health/")
        pid = get_json(proc.url("/health/"))["pid"]
        get_json(proc.url("/send/sync/?n=1"))  # stock Channels opens its pool on first use
        before, opened = redis.connections_by_pid().get(pid, 0), redis.opened()
        get_json(proc.url(f"/send/sync/?n={SENDS}"), timeout=120)
        after, opened = redis.connections_by_pid().get(pid, 0), redis.opened() - opened
        proc.stop()
    return before, after, opened


def command(redis: Redis, name: str) -> int:
    """Connections opened by one run of ``manage.py NAME 1000``."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "LIFESPAN_TEST_REDIS": redis.url,
        "PYTHONPATH": str(REPO_ROOT),
    }
    before = redis.opened()
    subprocess.run(
        [catalogue.PYTHON, "manage.py", name, str(SENDS)],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return redis.opened() - before


def rows(results: dict[str, float]) -> list[Row]:
    """The p13 rows; their figures go into ``results`` too."""
    print(f"p13: Redis connections per process, {SENDS} sync group_sends (ours | stock Channels)")
    with redis_server() as redis:
        views = {name: sync_view(redis, *APPS[name]) for name in APPS}
        commands = {name: command(redis, COMMANDS[name]) for name in COMMANDS}
    print("p13: " + json.dumps({"sync view": views, "command": commands}))
    results["p13_redis_connections_sync_view"] = views["ours"][1]
    results["p13_redis_connections_sync_view_stock"] = views["stock"][1]
    results["p13_redis_connections_opened_command"] = commands["ours"]
    results["p13_redis_connections_opened_command_stock"] = commands["stock"]

    def view(name: str) -> str:
        before, after, opened = views[name]
        return f"{before}->{after} +{opened}"

    return [
        Row("p13_redis_connections_sync_view", views["ours"][1], view("ours"), view("stock")),
        Row(
            "p13_redis_connections_opened_command",
            commands["ours"],
            str(commands["ours"]),
            str(commands["stock"]),
        ),
    ]

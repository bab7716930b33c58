"""The harness itself: how it finds a server's port must hold while the server is busy."""

from __future__ import annotations

import sys

import pytest

from tests.harness.servers import ServerProcess, wait_until

# Listens on a port it never prints, then opens and closes sockets as fast as it can: the
# descriptors of a server hanging up on its clients while the harness looks at /proc.
CHURN = """
import socket, sys
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
print("ready", flush=True)
while True:
    socket.socket().close()
"""


@pytest.mark.servers
def test_the_port_of_a_busy_server_is_found_every_time():
    with ServerProcess([sys.executable, "-c", CHURN], settings="tests.settings") as server:
        wait_until(lambda: "ready" in server.stdout(), 20.0, "the churner to start")
        first = server.wait_port()
        readings = [server.ports() for _ in range(200)]
    assert first > 0
    assert readings == [[first]] * 200

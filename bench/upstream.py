"""The upstream service the views call: a tiny keep-alive HTTP/1.1 server on loopback.

It answers every request with the same small JSON body, at a small fraction of what a Django
request costs, so that the figures measure the client side.

Usage: ``python -m bench.upstream PORT [DELAY]`` (port 0: any free port; each answer ``DELAY`` s
after its request, 0 by default); it prints the port it listens on.
"""

from __future__ import annotations

import asyncio
import sys

BODY = b'{"id": 42, "name": "upstream", "tags": ["bench", "json"]}'
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)


class UpstreamProtocol(asyncio.Protocol):
    def __init__(self, delay: float) -> None:
        self.buffer = b""
        self.delay = delay

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        # Requests are GETs without a body: answer each complete request head.
        *heads, self.buffer = (self.buffer + data).split(b"\r\n\r\n")
        if not heads:
            return
        if self.delay:
            asyncio.get_running_loop().call_later(self.delay, self._answer, len(heads))
        else:
            self._answer(len(heads))

    def _answer(self, count: int) -> None:
        if not self.transport.is_closing():
            self.transport.write(RESPONSE * count)


async def serve(port: int, delay: float = 0.0) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(delay), "127.0.0.1", port)
    print(f"Listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), float(sys.argv[2]) if sys.argv[2:] else 0.0))

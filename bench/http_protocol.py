"""CPU per request of the HTTP protocol layer alone: `idp serve`'s against uvicorn's own.

Feeds each protocol wrk's request for `/health/alive` on one keep-alive connection, in process
(uvloop, a transport that discards what is written, a trivial ASGI app), and prints the CPU
time per request, three rounds. Without sockets, the app or wrk this is far less noisy than
wrk on a shared machine; docs/performance.md ("The HTTP protocol") has figures.

    taskset -c 0 .venv/bin/python -m bench.http_protocol [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from idp.serving import BoundedHeadProtocol

REQUEST = b"GET /health/alive HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"  # as wrk sends it
PROTOCOLS: dict[str, type[Any]] = {
    "httptools (uvicorn)": HttpToolsProtocol,
    "BoundedHeadProtocol (idp serve)": BoundedHeadProtocol,
    "h11 (uvicorn)": H11Protocol,
}


RESPONDED = asyncio.Event()


async def app(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})
    RESPONDED.set()


class NullTransport(asyncio.Transport):
    """A connection from 127.0.0.1 that discards what is written to it."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def write(self, data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def microseconds_per_request(protocol_class: type[Any], requests: int) -> float:
    config = Config(app=app, http=protocol_class, limit_concurrency=1000, log_config=None)
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(NullTransport())
    start = time.process_time()
    for _ in range(requests):
        protocol.data_received(REQUEST)
        await RESPONDED.wait()
        RESPONDED.clear()
    elapsed = time.process_time() - start
    protocol.connection_lost(None)  # stops its timers
    return elapsed / requests * 1e6


async def measure(requests: int) -> None:
    for _ in range(3):
        figures = [
            f"{name}: {await microseconds_per_request(protocol, requests):.1f} µs"
            for name, protocol in PROTOCOLS.items()
        ]
        print("   ".join(figures), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    uvloop.run(measure(parser.parse_args().requests))


if __name__ == "__main__":
    main()

"""The application of `idp serve` with one route more, `/fail`, that raises: what an unhandled
exception leaves in the log of a real server."""

from __future__ import annotations

import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from idp.app import asgi


async def fail(request: Request) -> Response:
    api_key = request.headers.get("x-api-key")  # a local variable that holds a secret
    raise RuntimeError(f"failing on purpose with a key of {len(api_key or '')} characters")


def serve(port: int) -> None:
    """Serve it as `idp serve` does (same application factory, same logging)."""
    app = asgi()
    app.router.routes.insert(0, Route("/fail", fail))
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, server_header=False)

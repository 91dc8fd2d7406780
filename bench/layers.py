"""CPU per request of each layer of the request path, in process (no sockets, no wrk).

Calls the application as an ASGI server would, one request after another, and reads the
process's CPU time (`time.process_time`, every thread) over many requests, in three rounds
(the least disturbed is kept): far less noisy than requests per second on a shared machine.
For each scenario (discovery, JWKS, client credentials with an opaque token, introspection):

- each middleware of `idp.app.middleware` alone, around an application that answers at once
  (what it adds, its log line included), and the route alone against the route with them all;
- the log lines (JSON at INFO against WARNING, written to /dev/null);
- the thread hand-off (the view's work run in the event loop instead of a request thread);
- for the database scenarios, where the rest goes, by package (cProfile with a CPU clock, the
  shares scaled to the measured CPU): Authlib (its request objects and server built for each
  request, client authentication), SQLAlchemy, the driver, the signature, our own code.

    taskset -c 0 .venv/bin/python -m bench.layers [--database postgresql://postgres@127.0.0.1/x]
                                                  [--requests 3000] [--db-requests 400]

With `--database` naming a PostgreSQL server, a fresh schema is made in it (and dropped at the
end); the default is a new SQLite file. Nothing listens on a port. The HTTP protocol below the
ASGI call (uvicorn's httptools, 12-15 µs) is measured by `bench.http_protocol`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import gc
import json
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import uvloop
from anyio import to_thread
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idp import app as application
from idp.config import Settings
from idp.db import Database
from idp.db.migrate import upgrade
from idp.logging import configure_logging
from idp.oauth import views as oauth_views
from idp.oauth.documents import PublishedDocuments
from idp.runtime import Runtime
from idp.services import clients as client_service
from idp.services.clients import NewClient

ISSUER = "http://127.0.0.1:8000"
Request = tuple[str, str, list[tuple[bytes, bytes]], bytes]


class Answer:
    """What the application sent for one request."""

    def __init__(self) -> None:
        self.status = 0
        self.body = b""

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


async def call(app: ASGIApp, request: Request) -> Answer:
    method, path, headers, body = request
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # a client that keeps the connection open
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    answer = Answer()
    await app(scope, receive, answer.send)
    return answer


async def answer_at_once(scope: Scope, receive: Receive, send: Send) -> None:
    """What a view sends, with nothing in between: a small JSON answer."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"{}"})


def basic(client_id: str, secret: str) -> tuple[bytes, bytes]:
    return (b"authorization", b"Basic " + base64.b64encode(f"{client_id}:{secret}".encode()))


FORM = (b"content-type", b"application/x-www-form-urlencoded")


def build(runtime: Runtime, layers: int) -> Starlette:
    """The application with the first `layers` middlewares of the real stack."""
    table = application.routes()
    stack: list[Middleware] = application.middleware(runtime.settings, table)[:layers]
    app = Starlette(
        routes=table, middleware=stack, exception_handlers=application.EXCEPTION_HANDLERS
    )
    app.state.runtime = runtime
    app.state.documents = PublishedDocuments(runtime.settings, runtime.keyring)
    return app


Variant = tuple[ASGIApp, Callable[[], AbstractContextManager[None]]]


async def cpu_per_request(
    variants: dict[str, Variant], request: Request, count: int, rounds: int = 5
) -> dict[str, float]:
    """Microseconds of process CPU per request of each variant (an application and the setting
    it runs in), taking turns round after round; the least of its rounds for each."""
    best = dict.fromkeys(variants, float("inf"))
    gc.collect()
    gc.freeze()  # as `idp.app.asgi` does once the application is built
    for _ in range(rounds):
        for name, (app, setting) in variants.items():
            with setting():
                for _ in range(max(count // 10, 20)):  # warm-up
                    answer = await call(app, request)
                assert 200 <= answer.status < 300, (request[1], answer.status, answer.body[:300])
                started = time.process_time()
                for _ in range(count):
                    await call(app, request)
                spent = (time.process_time() - started) / count * 1e6
            best[name] = min(best[name], spent)
    return best


@contextmanager
def logs(level: str) -> Iterator[None]:
    """Our production log format at `level`, written to /dev/null."""
    saved = sys.stderr
    with open(os.devnull, "w") as null:
        sys.stderr = null
        configure_logging(json=True, level=level)
        try:
            yield
        finally:
            sys.stderr = saved


@contextmanager
def inline() -> Iterator[None]:
    with logs("INFO"), inline_threads():
        yield


@contextmanager
def inline_threads() -> Iterator[None]:
    """The views' database work run in the event loop instead of a request thread."""
    original = oauth_views.run_in_threadpool

    async def inline(func: Callable[..., Any], *args: Any) -> Any:
        return func(*args)

    oauth_views.run_in_threadpool = inline  # type: ignore[assignment]
    try:
        yield
    finally:
        oauth_views.run_in_threadpool = original


GROUPS = [
    ("SQLAlchemy", ("sqlalchemy/",)),
    ("driver (psycopg / sqlite3)", ("psycopg", "sqlite3")),
    ("Authlib", ("authlib/",)),
    (
        "signature, hashing (joserfc, cryptography, hashlib)",
        ("joserfc/", "cryptography", "_hashlib"),
    ),
    ("logging (structlog, logging, json)", ("structlog/", "logging/", "json/")),
    ("Starlette", ("starlette/",)),
    ("our code (idp/)", ("/idp/",)),
]


def _group(function: tuple[str, int, str]) -> str:
    filename, _line, name = function
    where = f"{filename} {name}"
    for label, needles in GROUPS:
        if any(needle in where for needle in needles):
            return label
    return "other (event loop, asyncio, builtins)"


async def profile_shares(app: ASGIApp, request: Request, count: int) -> dict[str, float]:
    """Each package's share of the CPU (self time), and of a few entry points (cumulative)."""
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(count):
        await call(app, request)
    profiler.disable()
    stats = pstats.Stats(profiler)
    entries: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in entries.values())
    shares: dict[str, float] = {}
    for function, (_cc, _nc, self_time, _cum, _callers) in entries.items():
        label = _group(function)
        shares[label] = shares.get(label, 0.0) + self_time / total
    cumulative = {
        "  of which: Authlib server built per request (ProtocolServer)": "__init__ ProtocolServer",
        "  of which: Authlib request object (StarletteOAuth2Request)": "StarletteOAuth2Request",
        "  of which: client authentication (with its lookup)": "authenticate_client",
        "  of which: COMMIT": "commit",
    }
    for label, wanted in cumulative.items():
        best = 0.0
        for (filename, _line, name), entry in entries.items():
            if _matches(filename, name, wanted):
                best = max(best, entry[3])
        shares[label] = best / total
    return shares


def _matches(filename: str, name: str, wanted: str) -> bool:
    if wanted == "__init__ ProtocolServer":
        return name == "__init__" and filename.endswith("idp/oauth/server.py")
    if wanted == "StarletteOAuth2Request":
        return name == "create_oauth2_request" and filename.endswith("idp/oauth/server.py")
    if wanted == "authenticate_client":
        return name == "authenticate_client" and "authlib" in filename
    return name == "commit" and filename.endswith("sqlalchemy/orm/session.py")


@contextmanager
def database(url: str | None) -> Iterator[str]:
    """A migrated, empty database: a schema of its own in PostgreSQL, or a new SQLite file."""
    if url is None:
        with tempfile.TemporaryDirectory() as folder:
            path = f"sqlite:///{Path(folder) / 'idp.db'}"
            migrate(path)
            yield path
        return
    driver = url.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = create_engine(driver, isolation_level="AUTOCOMMIT")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        scoped = make_url(driver).update_query_dict({"options": f"-csearch_path={schema}"})
        rendered = scoped.render_as_string(hide_password=False)
        migrate(rendered)
        yield rendered
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def migrate(url: str) -> None:
    db = Database.from_url(url)
    upgrade(db.engine)
    db.dispose()


def layers(label: str, results: dict[str, float]) -> None:
    print(f"\n{label}")
    for name, value in results.items():
        print(f"  {name:<62} {value:8.1f} µs")


async def measure(runtime: Runtime, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    to_thread.current_default_thread_limiter().total_tokens = runtime.settings.database_pool_size
    with runtime.db.transaction() as session:
        secret = client_service.register_client(
            session,
            NewClient(
                name="Bench opaque",
                client_id="bench-opaque",
                grant_types=["client_credentials"],
                scope="profile",
            ),
            actor="bench",
        ).client_secret
    assert secret
    auth = basic("bench-opaque", secret)
    full = build(runtime, 5)
    cc: Request = ("POST", "/token", [auth, FORM], b"grant_type=client_credentials")
    issued = await call(full, cc)
    token = json.loads(issued.body)["access_token"]
    introspect: Request = (
        "POST",
        "/introspect",
        [auth, FORM],
        f"token={token}&token_type_hint=access_token".encode(),
    )
    scenarios: list[tuple[str, Request, int]] = [
        ("discovery", ("GET", "/.well-known/openid-configuration", [], b""), args.requests),
        ("jwks", ("GET", "/jwks", [], b""), args.requests),
        ("cc (opaque)", cc, args.db_requests),
        ("introspection", introspect, args.db_requests),
    ]
    names = [m.cls.__name__ for m in application.middleware(runtime.settings, [])]
    summary: dict[str, dict[str, float]] = {}

    def info() -> AbstractContextManager[None]:
        return logs("INFO")

    # Each middleware alone, around an application that answers at once: what it costs.
    alive: Request = ("GET", "/health/alive", [], b"")
    stack = application.middleware(runtime.settings, application.routes())
    alone: dict[str, Variant] = {"nothing": (answer_at_once, info)}
    for cls, options, keywords in stack:
        alone[cls.__name__] = (cls(answer_at_once, *options, **keywords), info)
    measured = await cpu_per_request(alone, alive, args.requests * 3)
    rows = {"an application that answers at once": measured["nothing"]}
    for name in names:
        rows[f"+ {name}"] = measured[name] - measured["nothing"]
    # And together, around the cheapest route.
    stacks = {"route": (build(runtime, 0), info), "full": (full, info)}
    measured = await cpu_per_request(stacks, alive, args.requests)
    rows["/health/alive: the route (Starlette's routing, error handling, the view)"] = measured[
        "route"
    ]
    rows["/health/alive: with every middleware"] = measured["full"]
    layers("the middlewares (each alone, with its log line), and together", rows)
    summary["middlewares"] = rows
    for label, request, count in scenarios:
        variants: dict[str, Variant] = {
            "full": (full, info),
            "quiet": (full, lambda: logs("WARNING")),
            "route": (build(runtime, 0), info),
        }
        database_work = label in ("cc (opaque)", "introspection")
        if database_work:
            variants["inline"] = (full, inline)
        measured = await cpu_per_request(variants, request, count)
        rows = {
            "total per request": measured["full"],
            "  the middlewares": measured["full"] - measured["route"],
            "  the log lines (JSON at INFO, against WARNING)": measured["full"] - measured["quiet"],
        }
        if database_work:
            rows["  the thread hand-off"] = measured["full"] - measured["inline"]
            with info(), inline_threads():
                shares = await profile_shares(full, request, max(count // 2, 50))
            for group, share in sorted(shares.items(), key=lambda item: item[0].startswith(" ")):
                name = group if group.startswith(" ") else f"  by profile: {group}"
                rows[name] = share * measured["inline"]
        layers(label, rows)
        summary[label] = rows
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="postgresql://... (a schema is made); default SQLite")
    parser.add_argument("--requests", type=int, default=3000, help="per round, documents")
    parser.add_argument("--db-requests", type=int, default=400, help="per round, token paths")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    configure_logging(json=True, level="WARNING")  # the setting up is not shown
    with database(args.database) as url, tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            issuer=ISSUER,
            environment="development",
            database_url=url,
            data_dir=Path(folder) / "data",
            keys_dir=Path(folder) / "keys",
            secret_key=base64.b64encode(os.urandom(32)).decode(),
            log_format="json",
        )
        runtime = Runtime.build(settings)
        runtime.keyring.ensure_initial()
        try:
            summary = uvloop.run(measure(runtime, args))
        finally:
            runtime.db.dispose()
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

"""A burst of complete sign-ins, as an office of citizens makes them all at once.

    .venv/bin/python -m bench.burst [--database sqlite|postgresql|both] [--signins 200]
                                    [--concurrency 40] [--workers 1]

For each database: a fresh one (a SQLite file, the embedded default, or a PostgreSQL database
on 127.0.0.1), the schema, signing keys, the `bench-web` e-service and one citizen per sign-in;
then `idp serve` as an operator starts it, and `--signins` complete sign-ins (authorize →
password → one-time code → token → userinfo) on `--concurrency` simultaneous browsers, each
citizen signing in once. Prints, per database, one JSON line: sign-ins completed and failed,
answers of 500 and above (with the path of each), cross-user mix-ups (userinfo naming another
citizen), p50/p99 of a whole sign-in and sign-ins per second.

The burst itself (`run_burst`) is shared with the test that asserts zero errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import signin

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
POSTGRES = "postgresql://postgres@127.0.0.1:5432"


@dataclass
class BurstResult:
    """What a burst of sign-ins did, as a browser and an e-service saw it."""

    completed: int = 0
    failed: int = 0
    mixups: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    server_errors: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] * 1000

    def summary(self) -> dict[str, Any]:
        return {
            "completed": self.completed,
            "failed": self.failed,
            "server_errors": sum(self.server_errors.values()),
            "server_errors_by_path": dict(self.server_errors),
            "mixups": self.mixups,
            "p50_ms": round(self.percentile(50), 1),
            "p99_ms": round(self.percentile(99), 1),
            "signins_per_second": round(self.completed / self.seconds, 2) if self.seconds else 0,
            "first_error": self.errors[0] if self.errors else None,
        }


def _route(path: str) -> str:
    """`/login/abc/totp` → `/login/{id}/totp`: the route, not the interaction."""
    parts = path.split("?", 1)[0].split("/")
    if len(parts) > 2 and parts[1] in ("login", "consent"):
        parts[2] = "{id}"
    if len(parts) > 3 and parts[1] == "authorize" and parts[2] in ("resume", "cancel"):
        parts[3] = "{id}"
    return "/".join(parts)


async def _burst(base: str, setup: dict, users: list[dict], concurrency: int) -> BurstResult:
    result = BurstResult()
    secret = setup["clients"]["bench-web"]
    queue = list(reversed(users))

    async def count_server_errors(response: httpx.Response) -> None:
        if response.status_code >= 500:
            result.server_errors[f"{response.request.method} {_route(response.url.path)}"] += 1

    # Connections rest at most 2 s, less than the server keeps them (5 s): a request is never
    # sent on a connection the server is closing at that moment.
    limits = httpx.Limits(max_connections=concurrency * 2, keepalive_expiry=2)
    async with httpx.AsyncClient(
        base_url=base, timeout=60, limits=limits, event_hooks={"response": [count_server_errors]}
    ) as http:
        signin.keep_no_cookies(http)

        async def browser() -> None:
            while queue:
                user = queue.pop()
                started = time.monotonic()
                try:
                    _browser, _tokens, info = await signin.sign_in(http, setup, user, secret)
                except (signin.FlowError, httpx.HTTPError, KeyError, ValueError) as exc:
                    result.failed += 1
                    result.errors.append(f"{user['username']}: {type(exc).__name__} {exc}")
                    continue
                if info.get("email") != f"{user['username']}@bench.example":
                    result.mixups += 1
                    result.errors.append(f"{user['username']} got {info!r}")
                    continue
                result.completed += 1
                result.latencies.append(time.monotonic() - started)

        began = time.monotonic()
        await asyncio.gather(*(browser() for _ in range(concurrency)))
        result.seconds = time.monotonic() - began
    return result


def run_burst(base: str, setup: dict, users: list[dict], concurrency: int) -> BurstResult:
    """Every citizen of `users` signs in once, `concurrency` at a time (in a thread of its
    own, so that a caller whose thread already runs an event loop can use it too)."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, _burst(base, setup, users, concurrency)).result()


class Installation:
    """A fresh provider on one database: schema, keys, e-service and citizens, then served."""

    def __init__(self, database: str, folder: Path, port: int, workers: int) -> None:
        self.folder = folder
        self.base = f"http://127.0.0.1:{port}"
        self.port = port
        self.workers = workers
        self.pg_name = f"idp_burst_{secrets.token_hex(4)}" if database == "postgresql" else None
        url = f"{POSTGRES}/{self.pg_name}" if self.pg_name else f"sqlite:///{folder / 'idp.db'}"
        self.env = {
            **os.environ,
            "IDP_ENVIRONMENT": "development",
            "IDP_ISSUER": self.base,
            "IDP_DATABASE_URL": url,
            "IDP_SECRET_KEY": secrets.token_urlsafe(32),
            "IDP_KEYS_DIR": str(folder / "keys"),
            "IDP_DATA_DIR": str(folder / "data"),
            "IDP_MAIL_BACKEND": "console",
            "IDP_LOG_FORMAT": "json",
            "IDP_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO),
        }
        self.env.pop("IDP_CONFIG_FILE", None)
        self.server: subprocess.Popen[bytes] | None = None

    def idp(self, *argv: str) -> None:
        subprocess.run(
            [PY, "-m", "idp", *argv], env=self.env, check=True, capture_output=True, cwd=REPO
        )

    def prepare(self, citizens: int) -> dict[str, Any]:
        if self.pg_name:
            import psycopg

            with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.pg_name}"')
        self.idp("db", "upgrade")
        path = self.folder / "fixtures.json"
        subprocess.run(
            [PY, "-m", "bench.fixtures", str(citizens), str(path)],
            env=self.env,
            check=True,
            capture_output=True,
            cwd=REPO,
        )
        return dict(json.loads(path.read_text()))

    def start(self) -> None:
        log = (self.folder / "server.log").open("wb")
        self.server = subprocess.Popen(
            [PY, "-m", "idp", "serve", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base}/health/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"bench: the provider did not start; see {self.folder / 'server.log'}")

    def close(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(15)
        if self.pg_name:
            import psycopg

            with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measure(database: str, signins: int, concurrency: int, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="idp-burst-") as tmp:
        installation = Installation(database, Path(tmp), free_port(), workers)
        try:
            setup = installation.prepare(signins)
            installation.start()
            outcome = run_burst(installation.base, setup, setup["users"], concurrency)
        finally:
            installation.close()
    return {
        "database": database,
        "signins": signins,
        "concurrency": concurrency,
        "workers": workers,
        **outcome.summary(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--signins", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    for database in databases:
        figures = measure(database, args.signins, args.concurrency, args.workers)
        print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()

"""The provider and both example e-services as real servers on free ports, seeded like
`idp demo`, for end-to-end and browser tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from idp import demo
from idp.config import Settings
from idp.runtime import Runtime
from tests.server import ServerProcess, free_port

REPO = Path(__file__).resolve().parent.parent
TEST_SECRET_KEY = "test-secret-key-0123456789-abcdefghijkl"


class AppProcess:
    """An ASGI app factory served by uvicorn in a child process."""

    def __init__(self, factory: str, env: dict[str, str], *, port: int, log: Path) -> None:
        self.factory = factory
        self.port = port
        self.env = {**os.environ, **env}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> None:
        command = [sys.executable, "-m", "uvicorn", "--factory", self.factory]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=self.env, stdout=handle, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.factory} exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health/alive", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.factory} did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class Stack:
    settings: Settings
    creds: demo.DemoCredentials
    provider: ServerProcess
    elicensing: AppProcess
    ejustice: AppProcess
    logs: Path
    processes: list[ServerProcess | AppProcess] = field(default_factory=list)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def start_stack(folder: Path, database_url: str) -> Stack:
    """Seed the database like `idp demo` and start the three servers."""
    ports = [free_port(), free_port(), free_port()]
    issuer = f"http://127.0.0.1:{ports[0]}"
    settings = Settings(
        issuer=issuer,
        database_url=database_url,
        data_dir=folder / "data",
        keys_dir=folder / "keys",
        secret_key=TEST_SECRET_KEY,
        client_fetch_private_addresses=True,
    )
    runtime = Runtime.build(settings)
    try:
        runtime.keyring.ensure_initial()
        creds = demo.seed(
            runtime,
            elicensing_url=f"http://127.0.0.1:{ports[1]}",
            ejustice_url=f"http://127.0.0.1:{ports[2]}",
        )
        eservice_env = demo.eservice_env(runtime, creds)
    finally:
        runtime.db.dispose()
    provider = ServerProcess(
        {
            "IDP_ISSUER": issuer,
            "IDP_DATABASE_URL": database_url,
            "IDP_DATA_DIR": str(settings.data_dir),
            "IDP_KEYS_DIR": str(settings.keys_dir),
            "IDP_SECRET_KEY": TEST_SECRET_KEY,
            "IDP_CLIENT_FETCH_PRIVATE_ADDRESSES": "true",
            "IDP_LOG_LEVEL": "WARNING",
        },
        port=ports[0],
        log=folder / "provider.log",
    )
    elicensing = AppProcess(
        "clients.elicensing.app:create_app",
        eservice_env["elicensing"],
        port=ports[1],
        log=folder / "e-licensing.log",
    )
    ejustice = AppProcess(
        "clients.ejustice.app:create_app",
        eservice_env["ejustice"],
        port=ports[2],
        log=folder / "e-justice.log",
    )
    stack = Stack(settings, creds, provider, elicensing, ejustice, folder)
    try:
        for process in (provider, elicensing, ejustice):
            stack.processes.append(process)
            process.start()
    except BaseException:
        stack.stop()
        raise
    return stack

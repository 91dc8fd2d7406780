"""The provider and both example e-services as real servers on free ports, seeded like
`idp demo`, for end-to-end and browser tests."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from idp import demo
from idp.config import Settings
from idp.runtime import Runtime
from tests.conftest import TEST_PASSWORD_HASHING, TEST_PASSWORD_HASHING_ENV, TEST_SECRET_KEY
from tests.server import ServerProcess, free_port

REPO = Path(__file__).resolve().parent.parent


class AppProcess(ServerProcess):
    """An ASGI app factory (an example e-service) served by uvicorn in a child process."""

    def __init__(self, factory: str, env: dict[str, str], *, port: int, log: Path) -> None:
        super().__init__(env, port=port, log=log, cwd=REPO)
        self.factory = factory

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "uvicorn", "--factory", self.factory]
        return [*command, "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]


@dataclass
class Stack:
    settings: Settings
    creds: demo.DemoCredentials
    provider: ServerProcess
    elicensing: AppProcess
    ejustice: AppProcess
    logs: Path
    processes: list[ServerProcess] = field(default_factory=list)

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
        **TEST_PASSWORD_HASHING,
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
            **TEST_PASSWORD_HASHING_ENV,
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

"""A real provider process on a free port, for tests that need one."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from idp.config import Settings
from tests.conftest import TEST_SECRET_KEY


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of `idp serve` on the database and folders of `settings`."""
    return {
        "IDP_DATABASE_URL": settings.effective_database_url,
        "IDP_DATA_DIR": str(settings.data_dir),
        "IDP_KEYS_DIR": str(settings.keys_dir),
        "IDP_SECRET_KEY": TEST_SECRET_KEY,
        "IDP_PASSWORD_HASH_MEMORY_KIB": str(settings.password_hash_memory_kib),
        "IDP_PASSWORD_HASH_ITERATIONS": str(settings.password_hash_iterations),
        **extra,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """`idp serve` in a child process, with the given environment."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        port: int | None = None,
        log: Path,
        cwd: Path | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.args = args  # more options of `idp serve`
        self.port = port or free_port()
        self.env = {**os.environ, **env}
        self.log = log
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "idp", "serve", "--port", str(self.port), *self.args]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> None:
        # Generous: a first start makes an RSA key, which on a machine busy with the rest of
        # the suite (parallel workers, browsers) can take many seconds. Not a timing assertion.
        with self.log.open("ab") as handle:
            # Its own process group: stopping it stops its workers too (`--workers N`).
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.cwd,
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._signal_group(signal.SIGKILL)
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health/alive", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.kill()  # a server that did not start in time is not left running
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

    def _signal_group(self, number: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, number)

    def kill(self) -> None:
        """Stop it the hard way (kill -9), workers included: nothing may depend on a clean
        shutdown."""
        if self.process and self.process.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.process.wait(10)
        self._signal_group(signal.SIGKILL)  # workers left behind by a process that ended

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._signal_group(signal.SIGKILL)

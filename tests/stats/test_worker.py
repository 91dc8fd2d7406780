"""The indicators are always current: every serving process counts new events in the
background, one process at a time, and nothing is counted twice."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from idp import events
from idp.config import Settings
from idp.db.models import StatsCount
from idp.runtime import Runtime
from idp.stats import rollup, worker
from idp.stats.rules import ALL
from tests.server import ServerProcess, server_env


def _signins(runtime: Runtime, count: int, first_user: int = 1) -> None:
    for user in range(first_user, first_user + count):
        with runtime.db.transaction() as db:
            events.record(db, "signin.started", client_id="tax")
            events.record(db, "signin.completed", user_id=user, client_id="tax", sso=True)


def _completed(runtime: Runtime) -> int:
    with runtime.db.read() as db:
        query = select(func.coalesce(func.sum(StatsCount.value), 0)).where(
            StatsCount.period == "d", StatsCount.client_id == ALL, StatsCount.metric == "completed"
        )
        return int(db.scalar(query) or 0)


def test_a_running_server_counts_new_events_without_a_command(
    tmp_path: Path, settings: Settings, runtime: Runtime
) -> None:
    env = server_env(settings, IDP_STATS_ROLLUP_INTERVAL="0.2", IDP_AUDIT_SEAL_INTERVAL="0.2")
    server = ServerProcess(env, log=tmp_path / "server.log", args=("--workers", "2"))
    server.start()
    try:
        _signins(runtime, 7)
        deadline = time.monotonic() + 60  # a bound on a busy machine, not a timing assertion
        while _completed(runtime) < 7 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _completed(runtime) == 7
        _signins(runtime, 3, first_user=20)
        while _completed(runtime) < 10 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # several more rounds of both workers: nothing is counted twice
        assert _completed(runtime) == 10
    finally:
        server.stop()
    assert rollup.run(runtime) == 0  # nothing was left for the command


def test_concurrent_rounds_count_each_event_once(backend: str, runtime: Runtime) -> None:
    _signins(runtime, 30)
    failures: list[BaseException] = []

    def count(index: int) -> None:
        try:
            if index == 0:
                rollup.run(runtime, batch=7)  # `idp janitor` waits for its turn
            else:
                worker.count_now(runtime)  # background rounds skip when it is taken
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=count, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    rollup.run(runtime)
    assert _completed(runtime) == 30
    if backend == "postgresql":
        _signins(runtime, 5, first_user=100)
        # Another process holds the rollup's state row: a background round leaves the work
        # to it at once, without waiting.
        other = create_engine(runtime.settings.effective_database_url)
        with other.connect() as connection, connection.begin():
            connection.execute(text("SELECT id FROM stats_state WHERE id = 1 FOR UPDATE"))
            assert worker.count_now(runtime) == 0
        other.dispose()
        assert worker.count_now(runtime) == 10  # five sign-ins, started and completed
        assert _completed(runtime) == 35


def test_the_background_count_can_be_turned_off(
    tmp_path: Path, settings: Settings, runtime: Runtime
) -> None:
    env = server_env(settings, IDP_STATS_ROLLUP_INTERVAL="0")
    server = ServerProcess(env, log=tmp_path / "server.log")
    server.start()
    try:
        _signins(runtime, 2)
        time.sleep(1)
    finally:
        server.stop()
    assert _completed(runtime) == 0
    assert rollup.run(runtime) == 4  # `idp janitor` or `idp stats rollup` count them

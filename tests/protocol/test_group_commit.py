"""Group commit (`idp.db.group_commit`): the client-credentials grant's rows of concurrent
requests are committed together, each request answered only once its batch has committed.

Real servers (`idp serve`), real HTTP, real databases: SQLite, and PostgreSQL when
`IDP_TEST_POSTGRES_URL` is set."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, func, select, text
from starlette.testclient import TestClient

from idp.app import create_app
from idp.audit import chain, integrity
from idp.config import Settings
from idp.db import Database
from idp.db.deferred import DeferredRows
from idp.db.group_commit import GroupCommit
from idp.db.models import AccessToken, Event, TokenGrant
from idp.db.types import utcnow
from idp.runtime import Runtime
from idp.security import hash_secret
from tests.conftest import make_settings
from tests.protocol.conftest import EService, register
from tests.server import ServerProcess, server_env


def machine(runtime: Runtime, client_id: str, **options: Any) -> EService:
    return register(
        runtime,
        name=f"Machine {client_id}",
        client_id=client_id,
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope="profile",
        **options,
    )


def ask_token(http: httpx.Client, service: EService) -> httpx.Response:
    return http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=service.basic(), timeout=30
    )


def counts(runtime: Runtime, client_id: str) -> tuple[int, int, int]:
    """The client's grants, access tokens and `token.issued` events."""
    with runtime.db.read() as db:
        return (
            db.scalar(select(func.count()).where(TokenGrant.client_id == client_id)) or 0,
            db.scalar(select(func.count()).where(AccessToken.client_id == client_id)) or 0,
            db.scalar(
                select(func.count()).where(
                    Event.client_id == client_id, Event.type == "token.issued"
                )
            )
            or 0,
        )


def stored_hashes(runtime: Runtime) -> set[str]:
    with runtime.db.read() as db:
        return set(db.scalars(select(AccessToken.token_hash)))


def serve(settings: Settings, tmp_path: Path, name: str, **env: str) -> ServerProcess:
    server = ServerProcess(server_env(settings, **env), log=tmp_path / f"{name}.log")
    server.start()
    return server


def test_every_token_answered_is_in_the_database_after_kill_9_mid_batch(
    tmp_path: Path, runtime: Runtime, settings: Settings
) -> None:
    services = [
        machine(runtime, "reports-opaque"),
        machine(
            runtime, "reports-jwt", access_token_format="jwt", id_token_signed_response_alg="ES256"
        ),
    ]
    # Batches wait 20 ms for company: many requests are in a batch when the process dies.
    server = serve(settings, tmp_path, "killed", IDP_GROUP_COMMIT_WAIT_MS="20")
    answered: list[tuple[EService, str]] = []
    unanswered: list[EService] = []
    stop = threading.Event()

    def load(index: int) -> None:
        service = services[index % 2]
        with httpx.Client(base_url=server.url) as http:
            while not stop.is_set():
                try:
                    response = ask_token(http, service)
                except httpx.HTTPError:
                    unanswered.append(service)  # the server died under it: no promise made
                    return
                if response.status_code == 200:
                    answered.append((service, response.json()["access_token"]))

    try:
        with ThreadPoolExecutor(24) as pool:
            futures = [pool.submit(load, index) for index in range(24)]
            deadline = time.monotonic() + 60
            while len(answered) < 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            server.kill()  # kill -9, requests in flight and a batch being gathered
            stop.set()
            for future in futures:
                future.result()
        assert len(answered) >= 200
        assert unanswered  # the kill came with requests in flight
        assert {service.client_id for service, _ in answered} == {s.client_id for s in services}

        stored = stored_hashes(runtime)
        assert {hash_secret(token) for _, token in answered} <= stored
        for service in services:  # nothing half: each grant with its token and its event
            grants, tokens, issued = counts(runtime, service.client_id)
            assert grants == tokens == issued

        server.start()
        with httpx.Client(base_url=server.url) as http:
            for service, token in answered:
                found = http.post(
                    "/introspect", data={"token": token}, auth=service.basic(), timeout=30
                ).json()
                assert found["active"] is True, token
                assert found["client_id"] == service.client_id
    finally:
        stop.set()
        server.stop()
    with runtime.db.transaction() as db:  # the audit chain takes every committed entry
        chain.seal(db)
    with runtime.db.read() as db:
        verified = integrity.verify(db)
    assert verified.ok and verified.pending == 0


REFUSE_SQLITE = """
CREATE TRIGGER refuse_events BEFORE INSERT ON events WHEN NEW.client_id = 'refused'
BEGIN SELECT RAISE(ABORT, 'refused by the test'); END
"""
REFUSE_POSTGRES = [
    """
    CREATE FUNCTION refuse_event() RETURNS trigger AS $$
    BEGIN
        IF NEW.client_id = 'refused' THEN RAISE EXCEPTION 'refused by the test'; END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER refuse_events BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION refuse_event()
    """,
]


def refuse_events_of_client_refused(runtime: Runtime) -> None:
    """A real failure in the middle of a batch: the events of e-service `refused` are refused
    by the database, after the batch's grants and tokens were inserted."""
    with runtime.db.transaction() as db:
        if runtime.db.dialect == "sqlite":
            db.execute(text(REFUSE_SQLITE))
        else:
            for statement in REFUSE_POSTGRES:
                db.execute(text(statement))


def at_once(count: int, request: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    ready = threading.Barrier(count)

    def one(index: int) -> httpx.Response:
        ready.wait()
        return request(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_a_failed_batch_answers_503_to_each_of_its_requests_and_writes_nothing(
    tmp_path: Path, runtime: Runtime, settings: Settings
) -> None:
    refused, fine = machine(runtime, "refused"), machine(runtime, "fine")
    refuse_events_of_client_refused(runtime)
    # Batches wait 300 ms for company: requests sent at once share one.
    server = serve(settings, tmp_path, "refusing", IDP_GROUP_COMMIT_WAIT_MS="300")
    try:
        with httpx.Client(base_url=server.url, limits=httpx.Limits(max_connections=20)) as http:
            responses = at_once(
                16, lambda index: ask_token(http, refused if index % 4 == 0 else fine)
            )
            by_client = {
                "refused": [r for i, r in enumerate(responses) if i % 4 == 0],
                "fine": [r for i, r in enumerate(responses) if i % 4 != 0],
            }
            for response in by_client["refused"]:
                assert response.status_code == 503
                assert response.json()["error"] == "temporarily_unavailable"
                assert response.headers["retry-after"]
            # The others either shared a batch with a refused request (503) or had their own.
            assert {r.status_code for r in by_client["fine"]} <= {200, 503}
            assert any(r.status_code == 503 for r in by_client["fine"])
            answered = [r.json()["access_token"] for r in by_client["fine"] if r.status_code == 200]
            # The process goes on: a request alone in its batch is answered and written.
            alone = ask_token(http, fine)
            assert alone.status_code == 200
            answered.append(alone.json()["access_token"])
    finally:
        server.stop()
    assert counts(runtime, "refused") == (0, 0, 0)
    assert counts(runtime, "fine") == (len(answered),) * 3
    assert {hash_secret(token) for token in answered} == stored_hashes(runtime)


def rows_of_one_token(tmp_path: Path, database_url: str, **settings: Any) -> dict[str, Any]:
    """Ask one client-credentials token in process; what the database then holds for it."""
    runtime = Runtime.build(make_settings(tmp_path, database_url, **settings))
    runtime.keyring.ensure_initial()
    try:
        service = machine(runtime, f"machine-{len(settings)}", access_token_format="jwt")
        with TestClient(create_app(runtime=runtime), base_url=runtime.settings.issuer) as http:
            response = http.post(
                "/token", data={"grant_type": "client_credentials"}, auth=service.basic()
            )
        assert response.status_code == 200
        token = response.json()["access_token"]
        with runtime.db.read() as db:
            row = db.scalar(select(AccessToken).where(AccessToken.token_hash == hash_secret(token)))
            assert row is not None
            grant = db.get(TokenGrant, row.grant_id)
            event = db.scalar(
                select(Event).where(Event.client_id == service.client_id).order_by(Event.id.desc())
            )
        assert grant is not None and event is not None
        varying = {"id", "grant_id", "token_hash", "jti", "created_at", "expires_at", "at"}
        varying |= {"seq", "prev_hash", "hash"}  # its place in the chain: both are sealed

        def columns(entry: Any) -> dict[str, Any]:
            values = {c.name: getattr(entry, c.name) for c in entry.__table__.columns}
            kept = {k: v for k, v in values.items() if k not in varying}
            return {k: ("machine" if k == "client_id" else v) for k, v in kept.items()}

        lifetimes = [round((r.expires_at - r.created_at).total_seconds()) for r in (row, grant)]
        return {
            "token": columns(row),
            "grant": columns(grant),
            "event": columns(event),
            "sealed": event.seq is not None and event.hash is not None,
            "lifetimes": lifetimes,
        }
    finally:
        runtime.db.dispose()


def test_the_batch_writes_the_rows_the_request_wrote_itself(
    tmp_path: Path, database_url: str
) -> None:
    own = rows_of_one_token(tmp_path / "own", database_url, group_commit_max_rows=0)
    grouped = rows_of_one_token(tmp_path / "grouped", database_url)
    assert grouped == own
    assert grouped["sealed"]


def unit(number: int) -> DeferredRows:
    rows = DeferredRows()
    now = utcnow()
    rows.add(TokenGrant(client_id="unit", scope="profile", created_at=now, expires_at=now))
    rows.add(
        AccessToken(
            token_hash=f"hash-{number}",
            jti=f"jti-{number}",
            format="opaque",
            client_id="unit",
            scope="profile",
            created_at=now,
            expires_at=now,
        )
    )
    rows.add(Event(at=now, type="token.issued", client_id="unit", data={"number": number}))
    return rows


def test_the_writer_commits_what_arrives_together_once_and_at_most_max_rows_at_a_time(
    database_url: str,
) -> None:
    database = Database.from_url(database_url)
    commits: list[int] = []
    event.listen(database.engine, "commit", lambda _connection: commits.append(1))
    writer = GroupCommit(database, max_rows=9, wait=0.5)  # three units of three rows
    try:
        started = time.monotonic()
        done = [writer.submit(unit(number)) for number in range(7)]
        for future in done:
            future.result(timeout=30)
        assert len(commits) == 3  # 3 + 3 + 1 units: max_rows, then the wait
        assert time.monotonic() - started >= 0.5
        with database.read() as db:
            tokens = db.execute(select(AccessToken.jti, TokenGrant.id).join(TokenGrant)).all()
            events = db.scalars(select(Event).order_by(Event.id)).all()
        assert len(tokens) == 7 and len({grant for _jti, grant in tokens}) == 7
        assert [e.data["number"] for e in events] == list(range(7))  # in the requests' order
    finally:
        writer.close()
        database.dispose()

"""The audit log: a hash chain that `idp audit verify` checks, on SQLite and PostgreSQL.

Actions only insert their entries; the sealer puts them into the chain afterwards (in the
background, in `idp audit seal`, `idp janitor` and before verifying)."""

from __future__ import annotations

import itertools
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from idp import events
from idp.audit import integrity, sealer
from idp.cli import main
from idp.config import Settings
from idp.db.models import Event
from idp.runtime import Runtime
from idp.services import InvalidInput
from idp.services import audit as audit_service
from idp.services import users as user_service

PASSWORD = "ambling-otter-under-ararat"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main(list(args))
    out, _err = capsys.readouterr()
    return code, json.loads(out) if "--json" in args else out


def some_actions(runtime: Runtime, count: int = 3, first: int = 0) -> None:
    for index in range(first, first + count):
        with runtime.db.transaction() as db:
            user_service.create_user(
                db,
                runtime.secrets,
                user_service.NewUser(username=f"citizen{index}", password=PASSWORD),
                actor="test",
            )
            user_service.set_disabled(db, f"citizen{index}", True, actor="test")


def entries(runtime: Runtime) -> list[Event]:
    """Every entry in chain order, once the sealer has run."""
    sealer.seal_all(runtime.db)
    with runtime.db.read() as db:
        return list(db.scalars(select(Event).order_by(Event.seq)))


def verify(runtime: Runtime) -> dict[str, Any]:
    with runtime.db.transaction() as db:
        return audit_service.verify(db).as_dict()


def test_every_event_is_chained_to_the_one_before(runtime: Runtime) -> None:
    some_actions(runtime)
    rows = entries(runtime)
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash == "0" * 64
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.hash
    found = verify(runtime)
    assert found["ok"] is True
    assert found["checked"] == len(rows)
    assert found["head_hash"] == rows[-1].hash


def test_a_rolled_back_action_leaves_no_entry(runtime: Runtime) -> None:
    some_actions(runtime, 1)
    before = len(entries(runtime))
    with pytest.raises(RuntimeError), runtime.db.transaction() as db:
        events.record(db, "admin.test", actor="test")
        raise RuntimeError("abandon the action")
    assert len(entries(runtime)) == before
    assert verify(runtime)["ok"] is True


def test_a_rolled_back_savepoint_keeps_the_rest_of_the_chain(runtime: Runtime) -> None:
    with runtime.db.transaction() as db:
        events.record(db, "admin.kept", actor="test")
        with pytest.raises(RuntimeError), db.begin_nested():
            events.record(db, "admin.dropped", actor="test")
            raise RuntimeError("undo the savepoint")
        events.record(db, "admin.kept_too", actor="test")
    assert [row.type for row in entries(runtime)] == ["admin.kept", "admin.kept_too"]
    assert verify(runtime)["ok"] is True


def test_verify_command_says_ok(
    capsys: pytest.CaptureFixture[str], cli_env: Settings, runtime: Runtime
) -> None:
    some_actions(runtime)
    code, data = run(capsys, "audit", "verify", "--json")
    assert code == 0
    assert data["ok"] is True
    code, text = run(capsys, "audit", "verify")
    assert code == 0
    assert text.startswith("OK: ")


def test_verify_finds_an_edited_entry(
    capsys: pytest.CaptureFixture[str], cli_env: Settings, runtime: Runtime
) -> None:
    some_actions(runtime)
    target = entries(runtime)[2]
    with runtime.db.transaction() as db:
        db.execute(update(Event).where(Event.id == target.id).values(actor="someone-else"))
    code, data = run(capsys, "audit", "verify", "--json")
    assert code == 1
    assert data["ok"] is False
    assert data["seq"] == target.seq
    assert data["event_id"] == target.id
    assert "altered" in data["problem"]
    code, text = run(capsys, "audit", "verify")
    assert code == 1
    assert text.startswith(f"BROKEN at entry {target.seq}")


def test_verify_finds_an_edited_time_or_outcome(runtime: Runtime) -> None:
    some_actions(runtime)
    target = entries(runtime)[1]
    with runtime.db.transaction() as db:
        db.execute(
            update(Event)
            .where(Event.id == target.id)
            .values(at=target.at - timedelta(days=1), outcome="failure")
        )
    found = verify(runtime)
    assert (found["ok"], found["seq"]) == (False, target.seq)


def test_verify_finds_a_deleted_entry(
    capsys: pytest.CaptureFixture[str], cli_env: Settings, runtime: Runtime
) -> None:
    some_actions(runtime)
    target = entries(runtime)[3]
    with runtime.db.transaction() as db:
        db.execute(delete(Event).where(Event.id == target.id))
    code, data = run(capsys, "audit", "verify", "--json")
    assert code == 1
    assert data["seq"] == target.seq
    assert "missing" in data["problem"]


def test_verify_finds_the_newest_entry_deleted(runtime: Runtime) -> None:
    some_actions(runtime)
    last = entries(runtime)[-1]
    with runtime.db.transaction() as db:
        db.execute(delete(Event).where(Event.id == last.id))
    found = verify(runtime)
    assert found["ok"] is False
    assert found["seq"] == last.seq


def test_verify_finds_a_deleted_and_renumbered_entry(runtime: Runtime) -> None:
    """Deleting an entry and shifting the later ones down still breaks a link."""
    some_actions(runtime, 1)
    rows = entries(runtime)
    with runtime.db.transaction() as db:
        db.execute(delete(Event).where(Event.id == rows[0].id))
        for row in rows[1:]:
            db.execute(update(Event).where(Event.id == row.id).values(seq=row.seq - 1))
    found = verify(runtime)
    assert found["ok"] is False
    assert found["seq"] == 1


def test_concurrent_appends_make_one_valid_chain(runtime: Runtime) -> None:
    writers, each = 4, 10
    failures: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for index in range(each):
                with runtime.db.transaction() as db:
                    events.record(db, "test.concurrent", actor=f"w{worker}", index=index)
                    events.record(db, "test.concurrent", actor=f"w{worker}", index=-index)
                # Sealers run while others write: waiting ones and background-style ones.
                sealer.seal_all(runtime.db, wait=index % 2 == 0)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    found = verify(runtime)
    assert found["ok"] is True
    assert found["checked"] == writers * each * 2


def test_export_writes_json_lines_in_a_date_range(
    capsys: pytest.CaptureFixture[str], cli_env: Settings, runtime: Runtime
) -> None:
    some_actions(runtime)
    today = datetime.now(UTC).date()
    code, text = run(capsys, "audit", "export", "--since", today.isoformat())
    assert code == 0
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == len(entries(runtime))
    assert lines[0]["seq"] == 1
    assert {"type", "at", "actor", "hash", "prev_hash"} <= set(lines[0])
    assert all("password" not in json.dumps(line) for line in lines)
    code, text = run(capsys, "audit", "export", "--until", (today - timedelta(days=1)).isoformat())
    assert (code, text) == (0, "")
    code, _ = run(capsys, "audit", "export", "--since", "yesterday")
    assert code == 1


def test_pruning_keeps_the_chain_verifiable(runtime: Runtime) -> None:
    some_actions(runtime)
    total = len(entries(runtime))
    later = datetime.now(UTC) + timedelta(days=runtime.settings.audit_retention_days + 1)
    with runtime.db.transaction() as db:
        pruned = audit_service.prune(db, runtime.settings, actor="test", now=later)
    assert pruned.removed == total
    rows = entries(runtime)
    assert [row.type for row in rows] == ["admin.audit_pruned"]
    assert rows[0].seq == total + 1
    assert rows[0].prev_hash == pruned.anchor_hash
    found = verify(runtime)
    assert found["ok"] is True
    assert found["anchor_seq"] == total
    some_actions(runtime, 1, first=10)
    assert verify(runtime)["ok"] is True
    # Nothing is old enough now: pruning removes nothing.
    with runtime.db.transaction() as db:
        assert audit_service.prune(db, runtime.settings, actor="test").removed == 0


def test_pruning_refuses_a_broken_chain(runtime: Runtime) -> None:
    some_actions(runtime)
    sealer.seal_all(runtime.db)
    with runtime.db.transaction() as db:
        first = db.scalar(select(func.min(Event.id)))
        db.execute(update(Event).where(Event.id == first).values(type="edited"))
    later = datetime.now(UTC) + timedelta(days=runtime.settings.audit_retention_days + 1)
    with pytest.raises(InvalidInput, match="does not verify"), runtime.db.transaction() as db:
        audit_service.prune(db, runtime.settings, actor="test", now=later)
    assert len(entries(runtime)) > 1


WRITER = """
import sys
from idp import events
from idp.audit.sealer import seal_all
from idp.db import Database
database = Database.from_url(sys.argv[1])
for index in range(int(sys.argv[2])):
    with database.transaction() as db:
        events.record(db, "test.process", actor=sys.argv[3], index=index)
    seal_all(database, wait=index % 2 == 0)
database.dispose()
"""


def test_several_processes_append_to_one_chain(runtime: Runtime) -> None:
    import subprocess
    import sys

    url = runtime.settings.effective_database_url
    processes = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, "15", f"p{n}"]) for n in range(3)
    ]
    assert [process.wait(timeout=120) for process in processes] == [0, 0, 0]
    found = verify(runtime)
    assert found["ok"] is True
    assert found["checked"] == 45


def test_actions_only_insert_and_the_sealer_chains_them(
    capsys: pytest.CaptureFixture[str], cli_env: Settings, runtime: Runtime
) -> None:
    with runtime.db.transaction() as db:
        events.record(db, "admin.first", actor="test")
        events.record(db, "admin.second", actor="test")
    with runtime.db.read() as db:
        waiting = list(db.scalars(select(Event).order_by(Event.id)))
    assert [(row.seq, row.hash) for row in waiting] == [(None, None), (None, None)]
    with runtime.db.read() as db:
        assert integrity.verify(db).pending == 2
    code, data = run(capsys, "audit", "seal", "--json")
    assert (code, data) == (0, {"sealed": 2})
    rows = entries(runtime)
    assert [(row.type, row.seq) for row in rows] == [("admin.first", 1), ("admin.second", 2)]
    assert rows[1].prev_hash == rows[0].hash
    code, data = run(capsys, "audit", "seal", "--json")
    assert (code, data) == (0, {"sealed": 0})
    found = verify(runtime)
    assert (found["ok"], found["checked"], found["pending"]) == (True, 2, 0)


def test_verify_seals_what_is_pending_first(
    capsys: pytest.CaptureFixture[str], cli_env: Settings, runtime: Runtime
) -> None:
    some_actions(runtime, 1)
    sealed = len(entries(runtime))
    with runtime.db.transaction() as db:
        events.record(db, "admin.late", actor="test")
    code, data = run(capsys, "audit", "verify", "--json")
    assert code == 0
    assert (data["ok"], data["checked"], data["pending"]) == (True, sealed + 1, 0)


def test_an_entry_edited_after_later_ones_were_sealed_is_found(runtime: Runtime) -> None:
    some_actions(runtime, 1)
    target = entries(runtime)[0]
    some_actions(runtime, 1, first=5)
    assert len(entries(runtime)) > 2
    with runtime.db.transaction() as db:
        db.execute(update(Event).where(Event.id == target.id).values(data={"forged": True}))
    found = verify(runtime)
    assert (found["ok"], found["seq"]) == (False, target.seq)


def test_the_janitor_seals(
    capsys: pytest.CaptureFixture[str], cli_env: Settings, runtime: Runtime
) -> None:
    some_actions(runtime, 1)
    with runtime.db.read() as db:
        waiting = integrity.verify(db).pending
    assert waiting >= 2
    code, data = run(capsys, "janitor", "--json")
    assert code == 0
    assert data["audit_sealed"] == waiting
    with runtime.db.read() as db:
        assert db.scalar(select(func.count(Event.id)).where(Event.seq.is_(None))) == 0


def test_a_serving_process_seals_what_it_recorded_when_it_stops(
    tmp_path: Path, database_url: str
) -> None:
    from starlette.testclient import TestClient

    from idp.app import create_app
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, database_url, audit_seal_interval=3600)
    runtime = Runtime.build(settings)
    runtime.keyring.ensure_initial()
    try:
        with TestClient(create_app(runtime=runtime), base_url=settings.issuer) as http:
            with runtime.db.transaction() as db:
                events.record(db, "admin.during", actor="test")
            assert http.get("/health/ready").status_code == 200
            with runtime.db.read() as db:
                assert db.scalar(select(Event.seq).where(Event.type == "admin.during")) is None
        with runtime.db.read() as db:
            assert db.scalar(select(Event.seq).where(Event.type == "admin.during")) == 1
        assert verify(runtime)["ok"] is True
    finally:
        runtime.db.dispose()

"""Signing keys: generated on first start, published safely, rotated without a gap."""

from __future__ import annotations

import json
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.testclient import TestClient

from idp.cli import main
from idp.config import Settings
from idp.oauth.keys import KeyRing, KeyRingError
from idp.runtime import Runtime

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def ring(tmp_path: Path, lifetime: int = 600) -> KeyRing:
    return KeyRing(tmp_path / "keys", max_token_lifetime=lifetime)


def kids(jwks: dict[str, list[dict[str, str]]]) -> list[str]:
    return [key["kid"] for key in jwks["keys"]]


def test_first_start_generates_an_rs256_and_an_es256_key(tmp_path: Path) -> None:
    keys = ring(tmp_path)
    made = keys.ensure_initial(now=T0)
    assert sorted(k.alg for k in made) == ["ES256", "RS256"]
    assert keys.ensure_initial(now=T0) == []  # only once
    for key in made:
        assert key.path is not None
        assert stat.S_IMODE(key.path.stat().st_mode) == 0o600
        assert json.loads(key.path.read_text())["jwk"]["d"]  # the private key lives in the file
    jwks = keys.jwks(T0)
    assert len(set(kids(jwks))) == 2
    for published in jwks["keys"]:
        assert not PRIVATE_MEMBERS & set(published)
        assert published["use"] == "sig"
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700


def test_a_key_file_readable_by_others_is_made_private_at_start(tmp_path: Path) -> None:
    made = ring(tmp_path).ensure_initial(now=T0)
    copied = made[0].path
    assert copied is not None
    copied.chmod(0o644)  # e.g. copied in by hand
    ring(tmp_path).ensure_initial(now=T0)  # the next start
    assert stat.S_IMODE(copied.stat().st_mode) == 0o600


def test_simultaneous_first_starts_make_one_set_of_keys(tmp_path: Path) -> None:
    rings = [ring(tmp_path) for _ in range(4)]
    threads = [threading.Thread(target=r.ensure_initial) for r in rings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(list((tmp_path / "keys").glob("*.json"))) == 2


def test_rotation_publishes_before_signing_and_keeps_the_old_key_until_its_tokens_expire(
    tmp_path: Path,
) -> None:
    keys = ring(tmp_path, lifetime=600)
    keys.ensure_initial(now=T0)
    old = keys.signing_key("RS256", T0)
    assert old is not None
    token_by_old = keys.sign(
        {"sub": "citizen", "exp": int((T0 + timedelta(minutes=10)).timestamp())},
        alg="RS256",
        now=T0,
    )

    activation = T0 + timedelta(minutes=10)
    new = keys.generate("RS256", activates_at=activation, now=T0)

    # Published at once, but not signing yet.
    assert new.kid in kids(keys.jwks(T0))
    assert keys.signing_key("RS256", T0 + timedelta(minutes=9)).kid == old.kid  # type: ignore[union-attr]
    assert keys.state(new, T0).status == "next"

    # From its activation on it signs; the old key stays published while its tokens live.
    after = activation + timedelta(seconds=1)
    assert keys.signing_key("RS256", after).kid == new.kid  # type: ignore[union-attr]
    assert keys.state(old, after).status == "retiring"
    published = keys.jwks(after)
    assert {old.kid, new.kid} <= set(kids(published))
    header = jwt.decode(token_by_old, KeySet.import_key_set(published)).header
    assert header["kid"] == old.kid

    # Once every token it signed has expired, it is no longer published.
    later = activation + timedelta(seconds=601)
    assert old.kid not in kids(keys.jwks(later))
    assert keys.state(old, later).status == "expired"
    assert keys.signing_key("ES256", later) is not None  # other algorithms untouched


def test_retire_refuses_the_only_signing_key_and_unpublish_removes_at_once(
    tmp_path: Path,
) -> None:
    keys = ring(tmp_path)
    keys.ensure_initial(now=T0)
    current = keys.signing_key("ES256", T0)
    assert current is not None
    with pytest.raises(KeyRingError, match="only key signing ES256"):
        keys.retire(current.kid, now=T0)
    with pytest.raises(KeyRingError, match="no key"):
        keys.retire("unknown", now=T0)

    t1 = T0 + timedelta(seconds=1)
    replacement = keys.generate("ES256", activates_at=t1, now=t1)
    assert keys.signing_key("ES256", t1).kid == replacement.kid  # type: ignore[union-attr]
    state = keys.retire(current.kid, unpublish=True, now=T0 + timedelta(seconds=1))
    assert state.status == "expired"
    assert current.kid not in kids(keys.jwks(T0 + timedelta(seconds=1)))


def test_a_running_provider_sees_keys_rotated_by_the_cli(
    client: TestClient, runtime: Runtime, cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    before = set(kids(client.get("/jwks").json()))
    assert main(["keys", "rotate", "--alg", "ES256", "--json"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["status"] == "next"
    runtime.keyring.refresh(interval=0)
    after = set(kids(client.get("/jwks").json()))
    assert after == before | {rotated["kid"]}
    # Still signing with the previous key until the activation delay has passed.
    assert runtime.keyring.signing_key("ES256").kid != rotated["kid"]  # type: ignore[union-attr]


def test_keys_commands(
    cli_env: Settings, runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted((k["alg"], k["status"]) for k in listed) == [
        ("ES256", "active"),
        ("RS256", "active"),
    ]

    assert main(["keys", "generate", "--alg", "EdDSA", "--json"]) == 0
    generated = json.loads(capsys.readouterr().out)
    assert generated["status"] == "active"
    assert main(["keys", "generate", "--alg", "EdDSA"]) == 1
    assert "already signing" in capsys.readouterr().err

    assert main(["keys", "rotate", "--alg", "EdDSA", "--immediately", "--json"]) == 0
    immediate = json.loads(capsys.readouterr().out)
    assert immediate["status"] == "active"
    assert main(["keys", "retire", generated["kid"], "--json"]) == 0
    retired = json.loads(capsys.readouterr().out)
    assert retired["status"] == "retiring"
    assert retired["published_until"] is not None

    assert main(["keys", "rotate", "--alg", "HS256"]) == 1
    assert "not one of" in capsys.readouterr().err
    assert main(["keys", "retire", "nope"]) == 1
    assert capsys.readouterr().err.strip() == "error: no key with kid 'nope'"


def test_kids_are_thumbprints_an_operator_can_type_as_arguments(tmp_path: Path) -> None:
    keys = ring(tmp_path)
    made = [keys.generate("EdDSA", activates_at=T0, now=T0) for _ in range(150)]
    assert all(key.kid == key.key.thumbprint() for key in made)
    assert all(key.kid[0].isalnum() for key in made)  # `idp keys retire <kid>` is not an option

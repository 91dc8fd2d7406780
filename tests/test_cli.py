"""The `idp` command: a public contract operators script against."""

from __future__ import annotations

import io
import json
import os
import pty
import select as io_select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey
from sqlalchemy import func, select
from typer.testing import CliRunner

from idp.auth import passwords
from idp.cli import app, main
from idp.config import Settings
from idp.db import Database
from idp.db.models import Client, Event, TotpCredential, User
from idp.security import SecretBox, hash_secret, master_key
from idp.services.clients import NewClient, register_client

pytestmark = pytest.mark.usefixtures("cli_env")

GOOD_PASSWORD = "ambling-otter-under-ararat"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def count(settings: Settings, model: Any) -> int:
    database = Database.from_url(settings.effective_database_url)
    try:
        with database.read() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        database.dispose()


def one_line_error(code: int, out: str, err: str, expected: str, *, status: int = 1) -> None:
    assert code == status
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert expected in lines[0]


# users ----------------------------------------------------------------------------------------


def test_users_create_with_every_field(
    capsys: pytest.CaptureFixture[str], cli_env: Settings
) -> None:
    data = run_json(
        capsys,
        "users",
        "create",
        "--username",
        "Anahit.P",
        "--password",
        GOOD_PASSWORD,
        "--email",
        "anahit@example.am",
        "--given-name",
        "Anahit",
        "--family-name",
        "Petrosyan",
        "--birthdate",
        "1990-04-12",
        "--phone-number",
        "+37410123456",
        "--totp-secret",
        "jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp",
    )
    assert data["username"] == "anahit.p"
    assert data["given_name"] == "Anahit"
    assert data["birthdate"] == "1990-04-12"
    assert data["totp"] is True
    assert len(data["sub"]) >= 32
    assert "password" not in json.dumps(data)

    database = Database.from_url(cli_env.effective_database_url)
    with database.read() as session:
        user = session.scalars(select(User)).one()
        assert user.password_hash and user.password_hash.startswith("$argon2id$")
        totp = session.scalars(select(TotpCredential)).one()
        assert "JBSW" not in totp.secret_encrypted  # encrypted at rest
        assert SecretBox(master_key(cli_env)).decrypt(totp.secret_encrypted) == (
            "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
        )
        event = session.scalars(select(Event).where(Event.type == "admin.user_created")).one()
        assert event.user_id == user.id
        assert GOOD_PASSWORD not in json.dumps(event.data)
    database.dispose()


def test_users_create_plain_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "users", "create", "--username", "aram", "--password", GOOD_PASSWORD)
    assert code == 0
    assert out.startswith("created user aram")


def created_password_hash(settings: Settings, username: str) -> str:
    database = Database.from_url(settings.effective_database_url)
    try:
        with database.read() as session:
            user = session.scalars(select(User).where(User.username == username)).one()
            assert user.password_hash
            return user.password_hash
    finally:
        database.dispose()


def test_users_create_warns_that_password_is_visible_to_other_users(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(
        capsys, "users", "create", "--username", "aram", "--password", GOOD_PASSWORD, "--json"
    )
    assert code == 0
    assert json.loads(out)["username"] == "aram"  # the warning stays off the result
    assert "--password is visible to other users" in err and GOOD_PASSWORD not in err


def test_users_create_reads_the_password_from_stdin(cli_env: Settings) -> None:
    result = CliRunner().invoke(
        app,
        ["users", "create", "--username", "aram", "--password-stdin", "--json"],
        input=GOOD_PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["username"] == "aram"
    assert GOOD_PASSWORD not in result.output and "warning" not in result.output
    assert passwords.verify_password(GOOD_PASSWORD, created_password_hash(cli_env, "aram"))


def test_users_create_without_a_password_outside_a_terminal_writes_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cli_env: Settings
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # a script, nothing piped in
    code, out, err = run(capsys, "users", "create", "--username", "aram")
    one_line_error(code, out, err, "--password-stdin", status=2)
    code, out, err = run(capsys, "users", "create", "--username", "aram", "--password-stdin")
    one_line_error(code, out, err, "no password on standard input", status=2)
    both = ["--password", GOOD_PASSWORD, "--password-stdin"]
    code, out, err = run(capsys, "users", "create", "--username", "aram", *both)
    one_line_error(code, out, err, "not both", status=2)
    assert count(cli_env, User) == 0


def test_users_create_asks_for_the_password_in_a_terminal(
    tmp_path: Path, cli_env: Settings
) -> None:
    """An operator at a terminal types the password twice; it is never echoed."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "idp", "users", "create", "--username", "aram"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        close_fds=True,
    )
    os.close(terminal)
    shown = b""

    def read_until(text: bytes) -> None:
        nonlocal shown
        while text not in shown:
            ready, _, _ = io_select.select([controller], [], [], 60)
            assert ready, shown
            shown += os.read(controller, 1024)

    try:
        read_until(b"Password: ")
        os.write(controller, GOOD_PASSWORD.encode() + b"\n")
        read_until(b"Repeat for confirmation: ")
        os.write(controller, GOOD_PASSWORD.encode() + b"\n")
        read_until(b"created user aram")
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    assert GOOD_PASSWORD.encode() not in shown
    assert passwords.verify_password(GOOD_PASSWORD, created_password_hash(cli_env, "aram"))


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--password", "short"], "at least 8 characters"),
        (["--password", "aram-sargsyan"], None),  # accepted: not equal to the username
        (["--password", "aramsargsyan1", "--username", "aramsargsyan1"], "username"),
        (["--birthdate", "12/04/1990"], "YYYY-MM-DD"),
        (["--birthdate", "2999-01-01"], "not plausible"),
        (["--phone-number", "010 12 34 56"], "international form"),
        (["--email", "not-an-email"], "not a valid address"),
        (["--totp-secret", "not base32!"], "base32"),
        (["--totp-secret", "JBSWY3DPEHPK3PXP"], "at least 112"),
        (["--username", "a b"], "username"),
    ],
)
def test_users_create_refuses_bad_input_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], cli_env: Settings, args: list[str], reason: str | None
) -> None:
    base = {"--username": "aram", "--password": GOOD_PASSWORD}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = ["users", "create", *[item for pair in base.items() for item in pair]]
    code, out, err = run(capsys, *argv)
    if reason is None:
        assert code == 0, err
        return
    one_line_error(code, out, err, reason)
    assert count(cli_env, User) == 0
    assert count(cli_env, Event) == 0


def test_duplicate_username_is_refused(
    capsys: pytest.CaptureFixture[str], cli_env: Settings
) -> None:
    run_json(capsys, "users", "create", "--username", "aram", "--password", GOOD_PASSWORD)
    code, out, err = run(
        capsys, "users", "create", "--username", "ARAM", "--password", GOOD_PASSWORD, "--json"
    )
    one_line_error(code, out, err, "already taken")
    assert json.loads(out) == {"error": "username 'aram' is already taken"}
    assert count(cli_env, User) == 1


def test_users_list_show_disable_enable(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("aram", "lilit"):
        run_json(capsys, "users", "create", "--username", name, "--password", GOOD_PASSWORD)
    listed = run_json(capsys, "users", "list")
    assert [u["username"] for u in listed] == ["aram", "lilit"]
    assert run_json(capsys, "users", "list", "--query", "lil")[0]["username"] == "lilit"

    shown = run_json(capsys, "users", "show", "lilit")
    assert shown["disabled"] is False
    assert not any("hash" in key or "secret" in key for key in shown)

    assert run_json(capsys, "users", "disable", "lilit")["disabled"] is True
    assert run_json(capsys, "users", "show", "lilit")["disabled"] is True
    assert run_json(capsys, "users", "enable", "lilit")["disabled"] is False

    code, out, err = run(capsys, "users", "show", "nobody")
    one_line_error(code, out, err, "no user 'nobody'")
    code, out, err = run(capsys, "users", "disable", "nobody")
    one_line_error(code, out, err, "no user 'nobody'")

    _, text, _ = run(capsys, "users", "list")
    assert text.splitlines()[0].split()[:2] == ["USERNAME", "SUB"]


# clients --------------------------------------------------------------------------------------


def test_generated_client_ids_can_be_typed_as_arguments(cli_env: Settings) -> None:
    # An id beginning with "-" would be taken for an option by `idp clients show`.
    database = Database.from_url(cli_env.effective_database_url)
    try:
        with database.transaction() as session:
            ids = [
                register_client(
                    session,
                    NewClient(name=f"E-service {n}", redirect_uris=[f"https://e{n}.example.am/cb"]),
                    actor="test",
                ).client.client_id
                for n in range(300)
            ]
    finally:
        database.dispose()
    assert len(set(ids)) == 300
    assert all(client_id[0].isalnum() for client_id in ids)


def test_an_id_beginning_with_a_dash_is_reached_after_a_double_dash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_json(
        capsys,
        "clients",
        "create",
        "--name",
        "Legacy",
        "--client-id=-legacy-7",
        "--redirect-uri",
        "https://legacy.example.am/cb",
    )
    code, out, err = run(capsys, "clients", "show", "-legacy-7")
    one_line_error(code, out, err, "goes after '--'", status=2)
    code, out, err = run(capsys, "clients", "show", "--json", "--", "-legacy-7")
    assert code == 0, err
    assert json.loads(out)["name"] == "Legacy"


def test_clients_create_prints_the_secret_once_and_stores_its_hash(
    capsys: pytest.CaptureFixture[str], cli_env: Settings
) -> None:
    data = run_json(
        capsys,
        "clients",
        "create",
        "--name",
        "E-licensing",
        "--redirect-uri",
        "https://licensing.example.am/callback",
        "--redirect-uri",
        "https://licensing.example.am/other",
        "--post-logout-redirect-uri",
        "https://licensing.example.am/",
        "--backchannel-logout-uri",
        "https://licensing.example.am/logout",
        "--scope",
        "openid profile email",
        "--first-party",
    )
    secret = data["client_secret"]
    assert len(secret) >= 43  # 256 bits
    assert data["first_party"] is True
    assert data["redirect_uris"] == [
        "https://licensing.example.am/callback",
        "https://licensing.example.am/other",
    ]
    assert data["grant_types"] == ["authorization_code", "refresh_token"]

    database = Database.from_url(cli_env.effective_database_url)
    with database.read() as session:
        client = session.scalars(select(Client)).one()
        assert client.secret_hash == hash_secret(secret)
    database.dispose()

    shown = run_json(capsys, "clients", "show", data["client_id"])
    assert "client_secret" not in shown and secret not in json.dumps(shown)

    code, text, _ = run(
        capsys, "clients", "create", "--name", "Tax", "--redirect-uri", "https://tax.example.am/cb"
    )
    assert code == 0
    assert "client_secret" in text and "shown only once" in text


def test_clients_of_every_auth_method(capsys: pytest.CaptureFixture[str]) -> None:
    public = run_json(
        capsys,
        "clients",
        "create",
        "--name",
        "Mobile app",
        "--auth-method",
        "none",
        "--redirect-uri",
        "am.gov.app:/callback",
        "--redirect-uri",
        "http://127.0.0.1/callback",
    )
    assert public["client_secret"] is None
    jwt = run_json(
        capsys,
        "clients",
        "create",
        "--name",
        "Justice",
        "--auth-method",
        "private_key_jwt",
        "--jwks-uri",
        "https://justice.example.am/jwks.json",
        "--redirect-uri",
        "https://justice.example.am/cb",
    )
    assert jwt["client_secret"] is None and jwt["jwks_uri"].endswith("jwks.json")
    machine = run_json(
        capsys,
        "clients",
        "create",
        "--name",
        "Notifications",
        "--grant-type",
        "client_credentials",
        "--auth-method",
        "client_secret_post",
        "--scope",
        "openid",
    )
    assert machine["grant_types"] == ["client_credentials"]
    assert machine["client_secret"]


BAD_CLIENTS = [
    (["--redirect-uri", "http://licensing.example.am/cb"], "https"),
    (["--redirect-uri", "https://*.example.am/cb"], "wildcard"),
    (["--redirect-uri", "https://example.am/cb#frag"], "fragment"),
    (["--redirect-uri", "JavaScript:alert(1)"], "javascript"),
    (["--redirect-uri", "data:text/html,hi"], "data"),
    (["--redirect-uri", "https://user@example.am/cb"], "user information"),
    (["--redirect-uri", "/relative/cb"], "absolute"),
    (["--redirect-uri", "https://example.am/cb?code=1"], "code"),
    (["--redirect-uri", "am.gov.app:/callback"], "https"),  # only public clients
    (["--redirect-uri", "https://example.am/cb", "--auth-method", "magic"], "auth method"),
    (["--redirect-uri", "https://example.am/cb", "--grant-type", "password"], "grant type"),
    (["--redirect-uri", "https://example.am/cb", "--scope", "openid admin"], "scope 'admin'"),
    (["--redirect-uri", "https://example.am/cb", "--auth-method", "private_key_jwt"], "jwks"),
    (["--auth-method", "none", "--grant-type", "client_credentials"], "public client"),
    ([], "redirect URI is required"),
    (
        [
            "--redirect-uri",
            "https://example.am/cb",
            "--post-logout-redirect-uri",
            "https://example.am/#x",
        ],
        "fragment",
    ),
    (
        [
            "--redirect-uri",
            "https://example.am/cb",
            "--backchannel-logout-uri",
            "http://example.am/logout",
        ],
        "https",
    ),
    (["--redirect-uri", "https://example.am/cb", "--subject-type", "secret"], "subject type"),
]


@pytest.mark.parametrize(("args", "reason"), BAD_CLIENTS)
def test_clients_create_refuses_what_the_standards_forbid(
    capsys: pytest.CaptureFixture[str], cli_env: Settings, args: list[str], reason: str
) -> None:
    code, out, err = run(capsys, "clients", "create", "--name", "Bad", *args)
    one_line_error(code, out, err, reason)
    assert count(cli_env, Client) == 0
    assert count(cli_env, Event) == 0


def test_unknown_option_is_a_one_line_usage_error(
    capsys: pytest.CaptureFixture[str], cli_env: Settings
) -> None:
    code, out, err = run(capsys, "clients", "create", "--name", "X", "--colour", "red")
    one_line_error(code, out, err, "No such option: --colour", status=2)
    code, out, err = run(capsys, "users", "create", "--password-stdin", "--json")
    assert code == 2
    assert json.loads(out)["error"].startswith("Missing option '--username'")
    assert count(cli_env, Client) == 0


def test_rotate_secret_replaces_the_old_one(
    capsys: pytest.CaptureFixture[str], cli_env: Settings
) -> None:
    data = run_json(
        capsys,
        "clients",
        "create",
        "--name",
        "Tax",
        "--redirect-uri",
        "https://tax.example.am/cb",
        "--client-id",
        "tax-service",
    )
    assert data["client_id"] == "tax-service"
    rotated = run_json(capsys, "clients", "rotate-secret", "tax-service")
    assert rotated["client_secret"] != data["client_secret"]
    database = Database.from_url(cli_env.effective_database_url)
    with database.read() as session:
        stored = session.scalars(select(Client)).one().secret_hash
    database.dispose()
    assert stored == hash_secret(rotated["client_secret"])

    code, out, err = run(
        capsys,
        "clients",
        "create",
        "--name",
        "Again",
        "--redirect-uri",
        "https://x.example.am/cb",
        "--client-id",
        "tax-service",
    )
    one_line_error(code, out, err, "already registered")
    code, out, err = run(capsys, "clients", "rotate-secret", "missing")
    one_line_error(code, out, err, "no client 'missing'")


def test_clients_list_disable_enable(capsys: pytest.CaptureFixture[str]) -> None:
    created = run_json(
        capsys,
        "clients",
        "create",
        "--name",
        "Justice",
        "--redirect-uri",
        "https://justice.example.am/cb",
    )
    client_id = created["client_id"]
    assert [c["client_id"] for c in run_json(capsys, "clients", "list")] == [client_id]
    assert run_json(capsys, "clients", "disable", client_id)["disabled"] is True
    assert run_json(capsys, "clients", "show", client_id)["disabled"] is True
    assert run_json(capsys, "clients", "enable", client_id)["disabled"] is False
    public = run_json(
        capsys,
        "clients",
        "create",
        "--name",
        "App",
        "--auth-method",
        "none",
        "--redirect-uri",
        "http://localhost/cb",
    )
    code, out, err = run(capsys, "clients", "rotate-secret", public["client_id"])
    one_line_error(code, out, err, "not a client secret")


# settings and schema --------------------------------------------------------------------------


def test_invalid_setting_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDP_ISSUER", "http://id.example.am")
    code, out, err = run(capsys, "users", "list")
    one_line_error(code, out, err, "invalid setting issuer", status=2)


def test_commands_refuse_an_unmigrated_database(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, empty_database_url: str
) -> None:
    monkeypatch.setenv("IDP_DATABASE_URL", empty_database_url)
    code, out, err = run(capsys, "users", "list")
    one_line_error(code, out, err, "run `idp db upgrade`")
    assert run_json(capsys, "db", "upgrade") == {"status": "up to date"}
    assert run_json(capsys, "users", "list") == []


def test_help_without_a_command_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys)
    assert code == 0
    assert "users" in out and "clients" in out and "keys" in out


# clients update -------------------------------------------------------------------------------


def public_jwks(path: Path, kid: str) -> str:
    """A file holding a JWKS with one new public key; its path."""
    key = ECKey.generate_key("P-256", parameters={"kid": kid}, private=False)
    path.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    return str(path)


def create_tax(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    data: dict[str, Any] = run_json(
        capsys,
        "clients",
        "create",
        "--name",
        "Tax",
        "--client-id",
        "tax",
        "--redirect-uri",
        "https://tax.example.am/callback",
        "--post-logout-redirect-uri",
        "https://tax.example.am/",
        "--logo-uri",
        "https://tax.example.am/logo.png",
        "--contact",
        "it@tax.example.am",
        "--scope",
        "openid profile email",
        "--allow-claim",
        "email",
        "--legal-basis",
        "Tax code, article 12.",
        *extra,
    )
    return data


def updated_events(settings: Settings) -> list[Event]:
    database = Database.from_url(settings.effective_database_url)
    try:
        with database.read() as session:
            query = select(Event).where(Event.type == "admin.client_updated").order_by(Event.id)
            return list(session.scalars(query))
    finally:
        database.dispose()


def test_clients_update_changes_only_the_options_given(
    capsys: pytest.CaptureFixture[str], cli_env: Settings
) -> None:
    before = create_tax(capsys)
    after = run_json(
        capsys,
        "clients",
        "update",
        "tax",
        "--name",
        "Tax office",
        "--redirect-uri",
        "https://tax.example.am/new",
        "--redirect-uri",
        "https://tax.example.am/other",
        "--first-party",
        "--scope",
        "openid profile email phone",
        "--access-token-format",
        "jwt",
    )
    assert after["name"] == "Tax office"
    # A repeated option replaces the whole list.
    assert after["redirect_uris"] == ["https://tax.example.am/new", "https://tax.example.am/other"]
    assert after["first_party"] is True
    assert after["scope"] == "openid profile email phone"
    assert after["access_token_format"] == "jwt"
    assert after["changes"] == {
        "name": {"before": "Tax", "after": "Tax office"},
        "redirect_uris": {
            "before": ["https://tax.example.am/callback"],
            "after": ["https://tax.example.am/new", "https://tax.example.am/other"],
        },
        "scope": {"before": "openid profile email", "after": "openid profile email phone"},
        "first_party": {"before": False, "after": True},
        "access_token_format": {"before": "opaque", "after": "jwt"},
    }
    shown = run_json(capsys, "clients", "show", "tax")
    untouched = set(before) - set(after["changes"]) - {"client_secret"}
    assert {k: shown[k] for k in untouched} == {k: before[k] for k in untouched}
    assert shown["has_secret"] is True  # the secret stays
    run_json(capsys, "clients", "update", "tax", "--not-first-party", "--no-require-pkce")
    shown = run_json(capsys, "clients", "show", "tax")
    assert shown["first_party"] is False and shown["require_pkce"] is False

    code, out, _ = run(capsys, "clients", "update", "tax", "--logo-uri", "https://tax.am/l.png")
    assert code == 0 and out.strip() == "updated client tax: logo_uri"
    code, out, _ = run(capsys, "clients", "update", "tax", "--logo-uri", "https://tax.am/l.png")
    assert code == 0 and out.strip() == "client tax: nothing changed"
    assert len(updated_events(cli_env)) == 3  # nothing changed: nothing recorded


def test_clients_update_clears_what_is_given_empty(
    capsys: pytest.CaptureFixture[str], cli_env: Settings
) -> None:
    create_tax(capsys, "--frontchannel-logout-uri", "https://tax.example.am/fc")
    cleared = run_json(
        capsys,
        "clients",
        "update",
        "tax",
        "--logo-uri",
        "",
        "--frontchannel-logout-uri",
        "",
        "--legal-basis",
        "",
        "--contact",
        "",
        "--allow-claim",
        "",
        "--post-logout-redirect-uri",
        "",
    )
    assert cleared["logo_uri"] is None
    assert cleared["frontchannel_logout_uri"] is None
    assert cleared["legal_basis"] is None
    assert cleared["contacts"] == []
    assert cleared["allowed_claims"] == []
    assert cleared["post_logout_redirect_uris"] == []
    assert cleared["changes"]["contacts"] == {"before": ["it@tax.example.am"], "after": []}
    assert cleared["changes"]["logo_uri"] == {
        "before": "https://tax.example.am/logo.png",
        "after": None,
    }
    [event] = updated_events(cli_env)
    assert event.actor.startswith("cli:") and event.client_id == "tax"
    assert event.data["changes"] == cleared["changes"]


def test_clients_update_of_the_auth_method_keeps_the_secret_rules(
    capsys: pytest.CaptureFixture[str], cli_env: Settings, tmp_path: Path
) -> None:
    """Away from a secret: the stored hash goes. Back to one: no secret is made silently."""
    create_tax(capsys)
    keys = public_jwks(tmp_path / "jwks.json", "tax-2026")
    moved = run_json(
        capsys, "clients", "update", "tax", "--auth-method", "private_key_jwt", "--jwks", keys
    )
    assert moved["has_secret"] is False
    assert moved["changes"]["jwks"]["before"] is None
    [summary] = moved["changes"]["jwks"]["after"]
    assert summary["kid"] == "tax-2026" and len(summary["thumbprint"]) == 43
    public_x = json.loads(Path(keys).read_text())["keys"][0]["x"]
    assert public_x not in json.dumps(moved["changes"])  # the key's id, not the key itself
    assert updated_events(cli_env)[-1].data["secret_removed"] is True
    database = Database.from_url(cli_env.effective_database_url)
    with database.read() as session:
        row = session.scalars(select(Client)).one()
        assert row.secret_hash is None and row.secret_rotated_at is None
    database.dispose()

    # The keys must go with private_key_jwt: the change is refused, nothing written.
    code, out, err = run(capsys, "clients", "update", "tax", "--auth-method", "client_secret_post")
    one_line_error(code, out, err, "client keys are only used with the private_key_jwt")
    code, out, err = run(
        capsys,
        "clients",
        "update",
        "tax",
        "--auth-method",
        "client_secret_post",
        "--jwks",
        "",
        "--json",
    )
    assert code == 0, err
    back = json.loads(out)
    assert back["auth_method"] == "client_secret_post" and back["has_secret"] is False
    assert "issue one with `idp clients rotate-secret tax`" in err
    rotated = run_json(capsys, "clients", "rotate-secret", "tax")
    assert rotated["client_secret"]
    assert run_json(capsys, "clients", "show", "tax")["has_secret"] is True


BAD_CHANGES = [
    (["--redirect-uri", "http://tax.example.am/callback"], "https", 1),
    (["--redirect-uri", "https://tax.example.am/cb#x"], "fragment", 1),
    (["--auth-method", "private_key_jwt"], "private_key_jwt requires", 1),
    (["--auth-method", "magic"], "auth method 'magic'", 1),
    (["--name", ""], "'name' cannot be cleared", 1),
    (["--grant-type", ""], "'grant_types' cannot be cleared", 1),
    (["--grant-type", "client_credentials"], "redirect URIs are only for", 1),
    (["--scope", "openid admin"], "scope 'admin'", 1),
    (["--allow-claim", "phone_number"], "needs the scope 'phone'", 1),
    (["--jwks-uri", "https://tax.example.am/jwks"], "only used with the private_key_jwt", 1),
    (["--subject-type", "secret"], "subject type", 1),
    (["--client-id", "other"], "No such option: --client-id", 2),
    (["--colour", "red"], "No such option: --colour", 2),
    ([], "nothing to change", 2),
]


@pytest.mark.parametrize(("args", "reason", "status"), BAD_CHANGES)
def test_clients_update_refuses_bad_changes_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
    cli_env: Settings,
    args: list[str],
    reason: str,
    status: int,
) -> None:
    create_tax(capsys)
    before = run_json(capsys, "clients", "show", "tax")
    # A good change given with the bad one is not made either.
    good = ["--logo-uri", ""] if args else []
    code, out, err = run(capsys, "clients", "update", "tax", *good, *args)
    one_line_error(code, out, err, reason, status=status)
    assert run_json(capsys, "clients", "show", "tax") == before
    assert updated_events(cli_env) == []


def test_clients_update_sets_the_feedback_sampling_rate_and_public_stats(
    capsys: pytest.CaptureFixture[str], cli_env: Settings
) -> None:
    create_tax(capsys)
    after = run_json(
        capsys, "clients", "update", "tax", "--feedback-sampling-rate", "0.2", "--public-stats"
    )
    assert after["feedback_sampling_rate"] == 0.2 and after["public_stats"] is True
    assert after["changes"] == {
        "public_stats": {"before": False, "after": True},
        "feedback_sampling_rate": {"before": 0.0, "after": 0.2},
    }
    shown = run_json(capsys, "clients", "show", "tax")
    assert shown["feedback_sampling_rate"] == 0.2 and shown["public_stats"] is True
    changed = run_json(
        capsys, "clients", "update", "tax", "--name", "Tax office", "--no-public-stats"
    )
    assert changed["name"] == "Tax office" and changed["public_stats"] is False
    assert changed["feedback_sampling_rate"] == 0.2
    code, _out, err = run(capsys, "clients", "update", "tax", "--feedback-sampling-rate", "1.5")
    assert code == 2 and "--feedback-sampling-rate" in err
    assert run_json(capsys, "clients", "show", "tax")["feedback_sampling_rate"] == 0.2


def test_clients_update_of_an_unknown_client(
    capsys: pytest.CaptureFixture[str], cli_env: Settings
) -> None:
    code, out, err = run(capsys, "clients", "update", "nope", "--name", "X", "--json")
    one_line_error(code, out, err, "no client 'nope'")
    assert json.loads(out) == {"error": "no client 'nope'"}
    assert count(cli_env, Client) == 0
    assert count(cli_env, Event) == 0


# users: second factor and sessions ------------------------------------------------------------


def test_users_reset_second_factor_and_end_sessions(
    capsys: pytest.CaptureFixture[str], cli_env: Settings
) -> None:
    run_json(
        capsys,
        "users",
        "create",
        "--username",
        "aram",
        "--password",
        GOOD_PASSWORD,
        "--totp-secret",
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    )
    reset = run_json(capsys, "users", "reset-second-factor", "aram")
    assert reset["username"] == "aram" and reset["totp"] is False
    assert count(cli_env, TotpCredential) == 0
    code, out, _ = run(capsys, "users", "end-sessions", "aram")
    assert code == 0 and out.strip() == "ended 0 sessions of aram"
    assert run_json(capsys, "users", "end-sessions", "aram") == {"username": "aram", "ended": 0}
    database = Database.from_url(cli_env.effective_database_url)
    with database.read() as session:
        types = [e.type for e in session.scalars(select(Event).where(Event.actor.like("cli:%")))]
    database.dispose()
    assert types.count("admin.user_second_factor_reset") == 1
    assert types.count("admin.user_sessions_ended") == 2
    for command in ("reset-second-factor", "end-sessions"):
        code, out, err = run(capsys, "users", command, "nobody")
        one_line_error(code, out, err, "no user 'nobody'")

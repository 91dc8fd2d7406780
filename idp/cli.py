"""`idp`: the operator's command line. A public contract: keep the spellings stable.

Every command takes `--json` for machine-readable output, and on bad input exits non-zero with a
one-line reason, having written nothing.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from typer.exceptions import TyperException

from idp.background import run_now
from idp.config import Settings, load_settings
from idp.db import DatabaseUnavailable
from idp.db.migrate import is_up_to_date, upgrade
from idp.json_input import parse_json
from idp.logging import configure_logging
from idp.runtime import Runtime
from idp.services import ServiceError
from idp.services import audit as audit_service
from idp.services import clients as client_service
from idp.services import keys as key_service
from idp.services import registration as registration_service
from idp.services import users as user_service

app = typer.Typer(
    help="National digital-identity provider.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Citizens and administrators.", no_args_is_help=True)
clients_app = typer.Typer(help="E-services (OpenID Connect clients).", no_args_is_help=True)
keys_app = typer.Typer(help="Signing keys.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
stats_app = typer.Typer(help="Indicators of use.", no_args_is_help=True)
for sub, name in (
    (db_app, "db"),
    (users_app, "users"),
    (clients_app, "clients"),
    (keys_app, "keys"),
    (config_app, "config"),
    (audit_app, "audit"),
    (stats_app, "stats"),
):
    app.add_typer(sub, name=name)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ACTOR = f"cli:{getpass.getuser()}"


class Failure(Exception):
    """Stop the command with a one-line reason and an exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 1) -> NoReturn:
    raise Failure(message, code)


def emit(as_json: bool, data: Any, text: str | Callable[[], str]) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        typer.echo(text() if callable(text) else text)


def settings() -> Settings:
    try:
        return load_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        fail(f"invalid setting {where}: {first['msg']}", 2)


def runtime() -> Runtime:
    return Runtime.build(settings())


@contextmanager
def transaction(rt: Runtime) -> Iterator[Session]:
    """One all-or-nothing transaction on an up-to-date schema."""
    if not is_up_to_date(rt.db.engine):
        fail("database schema is not up to date: run `idp db upgrade`")
    with rt.db.transaction() as session:
        yield session


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _pairs(data: dict[str, Any]) -> str:
    width = max(len(k) for k in data)
    return "\n".join(
        f"{k.ljust(width)}  {', '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in data.items()
    )


# serve, db ------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
) -> None:
    """Run the provider (limits on connections and slow clients: `http_*` settings)."""
    import uvicorn

    from idp.serving import uvicorn_options

    cfg = settings()
    if workers > 1:
        _share_metrics(cfg.data_dir / "metrics")
    uvicorn.run(
        "idp.app:asgi",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **uvicorn_options(cfg),
    )


def _share_metrics(folder: Path) -> None:
    """Let every worker answer `/metrics` with the figures of all of them: prometheus_client's
    multiprocess mode, in `folder` (emptied: the figures start from zero with the server), unless
    the operator named a folder in `PROMETHEUS_MULTIPROC_DIR` (then it is theirs to empty)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)  # the workers inherit it


@db_app.command("upgrade")
def db_upgrade(as_json: JsonFlag = False) -> None:
    """Apply every pending migration (creates the schema in an empty database)."""
    rt = runtime()
    upgrade(rt.db.engine)
    emit(as_json, {"status": "up to date"}, "database schema is up to date")


# users ----------------------------------------------------------------------------------------


VISIBLE_PASSWORD = (
    "warning: --password is visible to other users of this machine (process list, shell "
    "history): prefer --password-stdin or the prompt"
)


def _password(given: str | None, from_stdin: bool) -> str:
    """The initial password: from `--password`, the first line of standard input, or a hidden
    prompt typed twice when standard input is a terminal."""
    if given is not None and from_stdin:
        fail("give either --password or --password-stdin, not both", 2)
    if given is not None:
        return given
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            fail("no password on standard input", 2)
        return line
    if not sys.stdin.isatty():
        fail("no password: use --password-stdin, or run in a terminal to be asked", 2)
    typed: str = typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True, err=True, show_default=False
    )
    return typed


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option(help="Sign-in name.")],
    password: Annotated[
        str | None,
        typer.Option(
            help="Initial password (at least 8 characters). Visible to other users of this "
            "machine: prefer --password-stdin, or leave both out to be asked in a terminal."
        ),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
    ] = False,
    email: Annotated[str | None, typer.Option()] = None,
    given_name: Annotated[str | None, typer.Option()] = None,
    family_name: Annotated[str | None, typer.Option()] = None,
    birthdate: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    phone_number: Annotated[str | None, typer.Option(help="International form: +374...")] = None,
    totp_secret: Annotated[
        str | None, typer.Option(help="Base32 seed of an existing authenticator app.")
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Grant the administrator role.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a citizen account."""
    secret = _password(password, password_stdin)
    rt = runtime()
    new = user_service.NewUser(
        username=username,
        password=secret,
        email=email,
        given_name=given_name,
        family_name=family_name,
        birthdate=birthdate,
        phone_number=phone_number,
        totp_secret=totp_secret,
        is_admin=admin,
    )
    with transaction(rt) as session:
        user = user_service.create_user(session, rt.secrets, new, actor=ACTOR)
        data = user_service.describe(user)
    emit(as_json, data, f"created user {data['username']} (sub {data['sub']})")
    if password is not None:  # after the result: a refusal stays one line on stderr
        typer.echo(VISIBLE_PASSWORD, err=True)


@users_app.command("list")
def users_list(
    query: Annotated[str | None, typer.Option(help="Part of a username, email or name.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
    as_json: JsonFlag = False,
) -> None:
    """List accounts."""
    rt = runtime()
    with transaction(rt) as session:
        rows = [
            user_service.describe(u)
            for u in user_service.list_users(session, query=query, limit=limit)
        ]
    emit(as_json, rows, lambda: _table(rows, ["username", "sub", "email", "admin", "disabled"]))


@users_app.command("show")
def users_show(username: str, as_json: JsonFlag = False) -> None:
    """Show one account (never its secrets)."""
    rt = runtime()
    with transaction(rt) as session:
        data = user_service.describe(user_service.get_user(session, username))
    emit(as_json, data, lambda: _pairs(data))


def _set_user_disabled(username: str, disabled: bool, as_json: bool) -> None:
    rt = runtime()
    with transaction(rt) as session:
        data = user_service.describe(
            user_service.set_disabled(session, username, disabled, actor=ACTOR)
        )
    emit(as_json, data, f"{'disabled' if disabled else 'enabled'} user {data['username']}")


@users_app.command("disable")
def users_disable(username: str, as_json: JsonFlag = False) -> None:
    """Disable an account and end its sessions."""
    _set_user_disabled(username, True, as_json)


@users_app.command("enable")
def users_enable(username: str, as_json: JsonFlag = False) -> None:
    """Enable a disabled account."""
    _set_user_disabled(username, False, as_json)


@users_app.command("unlock")
def users_unlock(username: str, as_json: JsonFlag = False) -> None:
    """Lift a sign-in lock (after too many failed attempts) and clear the failures."""
    rt = runtime()
    with transaction(rt) as session:
        user, was_throttled = user_service.unlock(session, username, actor=ACTOR)
        data = {**user_service.describe(user), "had_failed_attempts": was_throttled}
    text = f"unlocked user {data['username']}"
    if not was_throttled:
        text = f"user {data['username']} had no failed attempts to clear"
    emit(as_json, data, text)


def _set_admin(username: str, admin: bool, as_json: bool) -> None:
    rt = runtime()
    with transaction(rt) as session:
        data = user_service.describe(user_service.set_admin(session, username, admin, actor=ACTOR))
    verb = "granted the administrator role to" if admin else "revoked the administrator role of"
    emit(as_json, data, f"{verb} {data['username']}")


@users_app.command("grant-admin")
def users_grant_admin(username: str, as_json: JsonFlag = False) -> None:
    """Make an account an administrator (signs in with a second factor; sessions end)."""
    _set_admin(username, True, as_json)


@users_app.command("revoke-admin")
def users_revoke_admin(username: str, as_json: JsonFlag = False) -> None:
    """Take the administrator role away (the account's sessions end)."""
    _set_admin(username, False, as_json)


@users_app.command("reset-second-factor")
def users_reset_second_factor(username: str, as_json: JsonFlag = False) -> None:
    """Remove the authenticator app and recovery codes (the citizen sets up a new app at the
    next sign-in); every session and grant ends, the e-services told."""
    rt = runtime()
    with transaction(rt) as session:
        data = user_service.describe(
            user_service.reset_second_factor(session, username, actor=ACTOR)
        )
    emit(
        as_json,
        data,
        f"reset the second factor of {data['username']}: a new authenticator app is set up at "
        "the next sign-in",
    )


@users_app.command("end-sessions")
def users_end_sessions(username: str, as_json: JsonFlag = False) -> None:
    """End every session of an account and revoke its grants (the e-services told)."""
    rt = runtime()
    with transaction(rt) as session:
        user, count = user_service.end_sessions(session, username, actor=ACTOR)
        data = {"username": user.username, "ended": count}
    emit(as_json, data, f"ended {count} sessions of {data['username']}")


# clients --------------------------------------------------------------------------------------


def _registered_text(data: dict[str, Any], secret: str | None) -> str:
    lines = [f"client_id      {data['client_id']}"]
    if secret:
        lines.append(f"client_secret  {secret}")
        lines.append("Store the secret now: it is shown only once.")
    return "\n".join(lines)


# The options of `clients create` and `clients update` (which takes each as optional).
RedirectUris = Annotated[
    list[str] | None, typer.Option("--redirect-uri", help="Exact redirect URI; repeat for several.")
]
PostLogoutUris = Annotated[list[str] | None, typer.Option("--post-logout-redirect-uri")]
BackchannelUri = Annotated[str | None, typer.Option("--backchannel-logout-uri")]
FrontchannelUri = Annotated[
    str | None,
    typer.Option("--frontchannel-logout-uri", help="Page loaded in a hidden frame at logout."),
]
AUTH_METHOD_HELP = "client_secret_basic | client_secret_post | private_key_jwt | none"
JwksUri = Annotated[str | None, typer.Option("--jwks-uri", help="For private_key_jwt.")]
GrantTypes = Annotated[
    list[str] | None,
    typer.Option(
        "--grant-type", help="authorization_code | refresh_token | client_credentials; repeat."
    ),
]
SCOPE_HELP = "Scopes the e-service may ask for."
SUBJECT_TYPE_HELP = "public | pairwise"
JwksFile = Annotated[
    str | None, typer.Option("--jwks", help="File with the public JWKS, for private_key_jwt.")
]
IdTokenAlg = Annotated[
    str | None,
    typer.Option("--id-token-alg", help="ID token algorithm: RS256 | ES256 | PS256 | EdDSA."),
]
UserinfoAlg = Annotated[
    str | None,
    typer.Option("--userinfo-alg", help="Sign userinfo responses with this algorithm."),
]
TOKEN_FORMAT_HELP = "opaque | jwt (RFC 9068)."
RestrictedScopes = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-restricted-scope", help="Authorise a restricted scope (national_id); repeat."
    ),
]
SectorUri = Annotated[
    str | None,
    typer.Option(
        "--sector-identifier-uri", help="Sector of pairwise subjects across several hosts."
    ),
]
LogoUri = Annotated[str | None, typer.Option("--logo-uri", help="Logo shown to citizens.")]
Contacts = Annotated[
    list[str] | None, typer.Option("--contact", help="Email address of its team; repeat.")
]
AllowedClaims = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-claim",
        help="Release only these claims (default: every claim of its scopes); repeat.",
    ),
]
LegalBasis = Annotated[
    str | None, typer.Option("--legal-basis", help="Why it may have the data (consent page).")
]


def _key_set(path: str | None) -> dict[str, Any] | None:
    """The public JWKS in the file at `path`."""
    if not path:
        return None
    try:
        key_set = parse_json(Path(path).read_bytes(), max_size=client_service.MAX_JWKS)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read the JWKS file: {exc}") from None
    if not isinstance(key_set, dict):
        raise typer.BadParameter("the JWKS file must hold a JSON object")
    return key_set


@clients_app.command("create")
def clients_create(
    name: Annotated[str, typer.Option(help="Name citizens see.")],
    redirect_uri: RedirectUris = None,
    post_logout_redirect_uri: PostLogoutUris = None,
    backchannel_logout_uri: BackchannelUri = None,
    frontchannel_logout_uri: FrontchannelUri = None,
    auth_method: Annotated[str, typer.Option(help=AUTH_METHOD_HELP)] = "client_secret_basic",
    jwks_uri: JwksUri = None,
    grant_type: GrantTypes = None,
    scope: Annotated[str, typer.Option(help=SCOPE_HELP)] = "openid profile",
    first_party: Annotated[
        bool, typer.Option("--first-party", help="A state e-service: no consent asked.")
    ] = False,
    subject_type: Annotated[str, typer.Option(help=SUBJECT_TYPE_HELP)] = "public",
    client_id: Annotated[str | None, typer.Option(help="Keep an existing client id.")] = None,
    jwks: JwksFile = None,
    id_token_alg: IdTokenAlg = None,
    userinfo_alg: UserinfoAlg = None,
    access_token_format: Annotated[str, typer.Option(help=TOKEN_FORMAT_HELP)] = "opaque",  # noqa: S107
    allow_restricted_scope: RestrictedScopes = None,
    sector_identifier_uri: SectorUri = None,
    require_pkce: Annotated[
        bool, typer.Option(help="Require PKCE (always on for public clients).")
    ] = True,
    logo_uri: LogoUri = None,
    contact: Contacts = None,
    allow_claim: AllowedClaims = None,
    legal_basis: LegalBasis = None,
    as_json: JsonFlag = False,
) -> None:
    """Register an e-service; prints its client_id and, once, its client_secret."""
    rt = runtime()
    new = client_service.NewClient(
        name=name,
        redirect_uris=redirect_uri or [],
        post_logout_redirect_uris=post_logout_redirect_uri or [],
        backchannel_logout_uri=backchannel_logout_uri,
        frontchannel_logout_uri=frontchannel_logout_uri,
        auth_method=auth_method,
        jwks_uri=jwks_uri,
        grant_types=grant_type or [],
        scope=scope,
        first_party=first_party,
        subject_type=subject_type,
        client_id=client_id,
        jwks=_key_set(jwks),
        id_token_signed_response_alg=id_token_alg,
        userinfo_signed_response_alg=userinfo_alg,
        access_token_format=access_token_format,
        restricted_scopes=allow_restricted_scope or [],
        sector_identifier_uri=sector_identifier_uri,
        require_pkce=require_pkce,
        logo_uri=logo_uri,
        contacts=contact or [],
        allowed_claims=allow_claim or [],
        legal_basis=legal_basis,
    )
    checked = run_now(client_service.check_client(new, rt.settings))  # fetches: no transaction
    with transaction(rt) as session:
        registered = client_service.register_client(session, checked, actor=ACTOR)
        data = client_service.describe(registered.client)
    data["client_secret"] = registered.client_secret
    emit(as_json, data, lambda: _registered_text(data, registered.client_secret))


def _given(value: Any) -> Any:
    """An option's value as a change: an empty value ("") clears; a repeated option's values
    replace the list (only "" given: the list is emptied)."""
    if isinstance(value, list):
        return [item for item in value if item]
    if isinstance(value, str):
        return value or None
    return value


@clients_app.command("update")
def clients_update(
    client_id: str,
    name: Annotated[str | None, typer.Option(help="Name citizens see.")] = None,
    redirect_uri: RedirectUris = None,
    post_logout_redirect_uri: PostLogoutUris = None,
    backchannel_logout_uri: BackchannelUri = None,
    frontchannel_logout_uri: FrontchannelUri = None,
    auth_method: Annotated[str | None, typer.Option(help=AUTH_METHOD_HELP)] = None,
    jwks_uri: JwksUri = None,
    grant_type: GrantTypes = None,
    scope: Annotated[str | None, typer.Option(help=SCOPE_HELP)] = None,
    first_party: Annotated[
        bool | None,
        typer.Option("--first-party/--not-first-party", help="A state e-service: no consent."),
    ] = None,
    subject_type: Annotated[str | None, typer.Option(help=SUBJECT_TYPE_HELP)] = None,
    jwks: JwksFile = None,
    id_token_alg: IdTokenAlg = None,
    userinfo_alg: UserinfoAlg = None,
    access_token_format: Annotated[str | None, typer.Option(help=TOKEN_FORMAT_HELP)] = None,
    allow_restricted_scope: RestrictedScopes = None,
    sector_identifier_uri: SectorUri = None,
    require_pkce: Annotated[
        bool | None, typer.Option(help="Require PKCE (always on for public clients).")
    ] = None,
    logo_uri: LogoUri = None,
    contact: Contacts = None,
    allow_claim: AllowedClaims = None,
    legal_basis: LegalBasis = None,
    public_stats: Annotated[
        bool | None,
        typer.Option(
            "--public-stats/--no-public-stats", help="Show its indicators on the /stats page."
        ),
    ] = None,
    feedback_sampling_rate: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of completed sign-ins after which the citizen is asked how easy it was.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change what was registered: only the options given change. A repeated option replaces
    the whole list; an empty value clears (--logo-uri "", --contact "" empties the list)."""
    given = {
        "name": name,
        "redirect_uris": redirect_uri,
        "post_logout_redirect_uris": post_logout_redirect_uri,
        "backchannel_logout_uri": backchannel_logout_uri,
        "frontchannel_logout_uri": frontchannel_logout_uri,
        "auth_method": auth_method,
        "jwks_uri": jwks_uri,
        "grant_types": grant_type,
        "scope": scope,
        "first_party": first_party,
        "subject_type": subject_type,
        "jwks": jwks,
        "id_token_signed_response_alg": id_token_alg,
        "userinfo_signed_response_alg": userinfo_alg,
        "access_token_format": access_token_format,
        "restricted_scopes": allow_restricted_scope,
        "sector_identifier_uri": sector_identifier_uri,
        "require_pkce": require_pkce,
        "logo_uri": logo_uri,
        "contacts": contact,
        "allowed_claims": allow_claim,
        "legal_basis": legal_basis,
    }
    changes = {key: _given(value) for key, value in given.items() if value is not None}
    indicators = {"public_stats": public_stats, "feedback_sampling_rate": feedback_sampling_rate}
    if not changes and all(value is None for value in indicators.values()):
        fail("nothing to change: give at least one option (see --help)", 2)
    if "jwks" in changes:
        changes["jwks"] = _key_set(changes["jwks"])
    rt = runtime()
    with transaction(rt) as session:
        current = client_service.get_client(session, client_id)
    checked = run_now(  # fetches: no transaction
        client_service.check_client(
            client_service.ClientChanges(changes), rt.settings, current=current
        )
    )
    with transaction(rt) as session:
        updated = client_service.update_client(session, client_id, checked, actor=ACTOR)
        shown = {name: getattr(updated.client, name) for name in indicators}
        if any(value is not None for value in indicators.values()):
            client_service.set_indicator_settings(
                session,
                client_id,
                public_stats=public_stats,
                feedback_sampling_rate=feedback_sampling_rate,
                actor=ACTOR,
            )
        updated.changes.update(
            {
                name: {"before": shown[name], "after": getattr(updated.client, name)}
                for name in indicators
                if getattr(updated.client, name) != shown[name]
            }
        )
        data = {**client_service.describe(updated.client), "changes": updated.changes}
    emit(as_json, data, lambda: _updated_text(client_id, updated))
    if data["auth_method"] in client_service.SECRET_METHODS and not data["has_secret"]:
        typer.echo(
            f"note: client {client_id} has no client secret yet: issue one with "
            f"`idp clients rotate-secret {client_id}`",
            err=True,
        )


def _updated_text(client_id: str, updated: client_service.Updated) -> str:
    if not updated.changes:
        return f"client {client_id}: nothing changed"
    lines = [f"updated client {client_id}: {', '.join(updated.changes)}"]
    if updated.secret_removed:
        lines.append("its client secret was removed (the auth method uses none)")
    if updated.grants_revoked:
        lines.append(f"{updated.grants_revoked} grants revoked (it is a public client now)")
    return "\n".join(lines)


@clients_app.command("list")
def clients_list(as_json: JsonFlag = False) -> None:
    """List e-services."""
    rt = runtime()
    with transaction(rt) as session:
        rows = [client_service.describe(c) for c in client_service.list_clients(session)]
    emit(as_json, rows, lambda: _table(rows, ["client_id", "name", "auth_method", "disabled"]))


@clients_app.command("show")
def clients_show(client_id: str, as_json: JsonFlag = False) -> None:
    """Show one e-service (never its secret)."""
    rt = runtime()
    with transaction(rt) as session:
        data = client_service.describe(client_service.get_client(session, client_id))
    emit(as_json, data, lambda: _pairs(data))


@clients_app.command("rotate-secret")
def clients_rotate_secret(client_id: str, as_json: JsonFlag = False) -> None:
    """Issue a new client secret (shown once); the old one stops working."""
    rt = runtime()
    with transaction(rt) as session:
        registered = client_service.rotate_secret(session, client_id, actor=ACTOR)
        data = {"client_id": client_id, "client_secret": registered.client_secret}
    emit(as_json, data, lambda: _registered_text(data, registered.client_secret))


@clients_app.command("disable")
def clients_disable(client_id: str, as_json: JsonFlag = False) -> None:
    """Disable an e-service: it can no longer sign citizens in or use its tokens."""
    rt = runtime()
    with transaction(rt) as session:
        data = client_service.describe(
            client_service.set_disabled(session, client_id, True, actor=ACTOR)
        )
    emit(as_json, data, f"disabled client {client_id}")


@clients_app.command("enable")
def clients_enable(client_id: str, as_json: JsonFlag = False) -> None:
    """Enable a disabled e-service."""
    rt = runtime()
    with transaction(rt) as session:
        data = client_service.describe(
            client_service.set_disabled(session, client_id, False, actor=ACTOR)
        )
    emit(as_json, data, f"enabled client {client_id}")


@clients_app.command("initial-token")
def clients_initial_token(
    uses: Annotated[int, typer.Option(help="Registrations it allows.", min=1, max=1000)] = 1,
    expires_in: Annotated[
        int | None, typer.Option(help="Seconds it stays valid (default: the setting).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="Who it is for (kept in the audit).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Issue an initial access token for dynamic client registration (shown once)."""
    rt = runtime()
    lifetime = expires_in if expires_in is not None else rt.settings.initial_access_token_lifetime
    with transaction(rt) as session:
        issued = registration_service.issue_initial_token(
            session, uses=uses, expires_in=lifetime, actor=ACTOR, note=note
        )
    data = {
        "initial_access_token": issued.token,
        "uses": issued.uses,
        "expires_at": issued.expires_at.isoformat(),
        "registration_endpoint": f"{rt.settings.issuer}/register",
    }
    emit(
        as_json,
        data,
        lambda: "\n".join(
            [
                f"initial_access_token  {issued.token}",
                f"uses                  {issued.uses}",
                f"expires_at            {data['expires_at']}",
                "Give it to the e-service now: it is shown only once.",
            ]
        ),
    )


# keys -----------------------------------------------------------------------------------------

KEY_COLUMNS = ["kid", "alg", "status", "activates_at", "signing_until", "published_until"]


@keys_app.command("list")
def keys_list(as_json: JsonFlag = False) -> None:
    """List signing keys and where each stands (next, active, retiring, expired)."""
    rt = runtime()
    rows = [key_service.describe(s) for s in key_service.list_keys(rt.keyring)]
    emit(
        as_json,
        rows,
        lambda: (
            _table(rows, KEY_COLUMNS)
            if rows
            else "(none: the provider generates keys when it first starts)"
        ),
    )


@keys_app.command("generate")
def keys_generate(
    alg: Annotated[str, typer.Option(help="RS256 | ES256 | PS256 | EdDSA")],
    as_json: JsonFlag = False,
) -> None:
    """Add a signing key for an algorithm that has none yet."""
    rt = runtime()
    with transaction(rt) as session:
        data = key_service.describe(key_service.generate_key(session, rt.keyring, alg, actor=ACTOR))
    emit(as_json, data, f"generated {data['alg']} key {data['kid']}")


@keys_app.command("rotate")
def keys_rotate(
    alg: Annotated[str, typer.Option(help="RS256 | ES256 | PS256 | EdDSA")] = "RS256",
    immediately: Annotated[
        bool, typer.Option("--immediately", help="Sign with it at once (compromised key).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Publish a new key; it signs after the activation delay and replaces the current one."""
    rt = runtime()
    with transaction(rt) as session:
        data = key_service.describe(
            key_service.rotate_key(
                session, rt.keyring, rt.settings, alg, actor=ACTOR, immediately=immediately
            )
        )
    emit(
        as_json,
        data,
        f"published {data['alg']} key {data['kid']}; it signs from {data['activates_at']}",
    )


@keys_app.command("retire")
def keys_retire(
    kid: str,
    unpublish: Annotated[
        bool, typer.Option("--unpublish", help="Remove from the JWKS at once (compromised key).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Stop signing with a key; it stays published until the tokens it signed expire."""
    rt = runtime()
    with transaction(rt) as session:
        data = key_service.describe(
            key_service.retire_key(session, rt.keyring, kid, actor=ACTOR, unpublish=unpublish)
        )
    emit(as_json, data, f"retired key {kid}; published until {data['published_until']}")


# audit ----------------------------------------------------------------------------------------


@audit_app.command("seal")
def audit_seal(as_json: JsonFlag = False) -> None:
    """Seal the audit entries committed since the last seal into the hash chain."""
    from idp.audit import sealer

    sealed = sealer.seal_all(runtime().db)
    emit(as_json, {"sealed": sealed}, f"{sealed} entries sealed")


@audit_app.command("verify")
def audit_verify(as_json: JsonFlag = False) -> None:
    """Seal the entries committed so far, then check the hash chain of the audit log; exit 1
    at the first broken link."""
    rt = runtime()
    with transaction(rt) as session:
        found = audit_service.verify(session)
    data = found.as_dict()
    if found.ok:
        emit(
            as_json,
            data,
            f"OK: {found.checked} entries verified (head {found.head_seq}, hash {found.head_hash})",
        )
        return
    emit(as_json, data, f"BROKEN at entry {found.seq}: {found.problem}")
    raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    since: Annotated[str | None, typer.Option(help="From this date (YYYY-MM-DD), UTC.")] = None,
    until: Annotated[str | None, typer.Option(help="Through this date (YYYY-MM-DD), UTC.")] = None,
) -> None:
    """Write audit entries as JSON lines, in chain order, with their hashes."""
    rt = runtime()
    start = audit_service.parse_instant(since)
    end = audit_service.parse_instant(until, end_of_day=True)
    with transaction(rt) as session:
        for entry in audit_service.export(session, since=start, until=end):
            typer.echo(json.dumps(entry, ensure_ascii=False, separators=(",", ":")))


@stats_app.command("rollup")
def stats_rollup(as_json: JsonFlag = False) -> None:
    """Count the events not yet counted into the indicators (run it every minute or so)."""
    from idp.stats import rollup

    counted = rollup.run(runtime())
    emit(as_json, {"counted": counted}, f"{counted} events counted")


MAX_IMPORT = 16 * 1024 * 1024


def _import_file(file: Path) -> bytes:
    """The bytes of a file to import (`-`: standard input)."""
    try:
        data = sys.stdin.buffer.read(MAX_IMPORT + 1) if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    if len(data) > MAX_IMPORT:
        fail(f"{file} is larger than {MAX_IMPORT} bytes")
    return data


ImportFile = Annotated[Path, typer.Argument(help="The CSV file (`-` for standard input).")]


def _import(file: Path, action: Callable[..., int], what: str, as_json: bool) -> None:
    data = _import_file(file)
    rt = runtime()
    with transaction(rt) as session:
        written = action(session, data, actor=ACTOR)
    emit(as_json, {"written": written}, f"{written} {what} stored")


@stats_app.command("import-channels")
def stats_import_channels(file: ImportFile, as_json: JsonFlag = False) -> None:
    """Store transactions by e-service, month and channel from a CSV file with the columns
    client_id,month,channel,transactions (month YYYY-MM; channel online, in_person, phone,
    post or other). A bad line refuses the whole file, naming it; nothing is written."""
    from idp.services import transactions

    _import(file, transactions.import_channel_totals, "channel totals", as_json)


@stats_app.command("import-costs")
def stats_import_costs(file: ImportFile, as_json: JsonFlag = False) -> None:
    """Store monthly costs by e-service from a CSV file with the columns client_id,month,amount
    (in the `stats_currency`, at most two decimals). A bad line refuses the whole file, naming
    it; nothing is written."""
    from idp.services import transactions

    _import(file, transactions.import_costs, "monthly costs", as_json)


@stats_app.command("eservice")
def stats_eservice(
    client_id: str,
    public: Annotated[
        bool | None,
        typer.Option("--public/--not-public", help="Show its indicators on the /stats page."),
    ] = None,
    sampling_rate: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="Share of completed sign-ins after which to ask the citizen."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show (or set) whether an e-service's indicators are public and how often its citizens
    are asked how easy it was to sign in."""
    rt = runtime()
    with transaction(rt) as session:
        if public is None and sampling_rate is None:
            client = client_service.get_client(session, client_id)
        else:
            client = client_service.set_indicator_settings(
                session,
                client_id,
                public_stats=public,
                feedback_sampling_rate=sampling_rate,
                actor=ACTOR,
            )
        data = {
            "client_id": client.client_id,
            "public_stats": bool(client.public_stats),
            "feedback_sampling_rate": client.feedback_sampling_rate,
        }
    emit(as_json, data, lambda: _pairs(data))


@stats_app.command("comments")
def stats_comments(
    client_id: Annotated[str | None, typer.Option(help="One e-service only.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """The comments citizens left with their ratings, newest first (kept for
    `feedback_comment_retention_days`)."""
    from idp.services import feedback

    rt = runtime()
    with transaction(rt) as session:
        found, _total = feedback.comments(
            session, feedback.CommentFilter(client_id=client_id), limit=limit
        )
        rows = [feedback.describe_comment(rating) for rating in found]
    emit(
        as_json,
        rows,
        lambda: _table(rows, ["created_at", "client_id", "source", "score", "comment"]),
    )


@audit_app.command("prune")
def audit_prune(as_json: JsonFlag = False) -> None:
    """Remove entries older than `audit_retention_days`; the chain stays verifiable."""
    rt = runtime()
    with transaction(rt) as session:
        pruned = audit_service.prune(session, rt.settings, actor=ACTOR)
    data = {
        "removed": pruned.removed,
        "anchor_seq": pruned.anchor_seq,
        "anchor_hash": pruned.anchor_hash,
    }
    emit(as_json, data, f"removed {pruned.removed} entries; chain anchored at {pruned.anchor_seq}")


# janitor --------------------------------------------------------------------------------------


@app.command()
def janitor(
    retry_now: Annotated[
        bool,
        typer.Option(
            "--retry-now",
            help="Retry every waiting back-channel logout now, whatever its backoff.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Count new events into the indicators (and the sign-in requests that expired, before they
    are deleted); delete expired codes, tokens, sign-in requests and assertion ids; deliver the
    back-channel logouts that are due; seal new audit entries into the chain."""
    from idp import janitor as housekeeping
    from idp.audit import sealer
    from idp.logout import delivery
    from idp.stats import rollup

    rt = runtime()
    sealed = sealer.seal_all(rt.db)
    # One instant for both: every sign-in request deleted has been counted first.
    now = datetime.now(UTC)
    counted = rollup.run(rt, now=now)
    with transaction(rt) as session:
        deleted = housekeeping.sweep(session, rt.settings, now=now)
    report = delivery.deliver_due_now(rt, retry_now=retry_now)
    sealed += sealer.seal_all(rt.db)
    data = {
        "indicators_counted": counted,
        "deleted": deleted,
        "backchannel_logout": report.as_dict(),
        "audit_sealed": sealed,
    }
    emit(
        as_json,
        data,
        lambda: (
            "deleted: "
            + ", ".join(f"{name} {count}" for name, count in deleted.items())
            + "\nback-channel logouts: "
            + ", ".join(f"{name} {count}" for name, count in report.as_dict().items())
            + f"\naudit entries sealed: {sealed}"
            + f"\nevents counted into the indicators: {counted}"
        ),
    )


# demo -----------------------------------------------------------------------------------------


@app.command()
def demo(
    port: Annotated[
        int,
        typer.Option(
            help="TCP port of the provider; the e-services take the next two.", min=1, max=65535
        ),
    ] = 8000,
    elicensing_port: Annotated[
        int | None,
        typer.Option(help="TCP port of e-licensing (default: --port + 1).", min=1, max=65535),
    ] = None,
    ejustice_port: Annotated[
        int | None,
        typer.Option(help="TCP port of e-justice (default: --port + 2).", min=1, max=65535),
    ] = None,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Seed only.")] = False,
) -> None:
    """Set up the embedded database with a demo citizen, an administrator, two e-services and
    90 days of synthetic indicator history, then start the provider and both e-services
    (Ctrl-C stops all three)."""
    from idp import demo as demo_data
    from idp import demo_history
    from idp.stats import rollup

    try:
        ports = demo_data.Ports.around(port, elicensing_port, ejustice_port)
    except ValueError as exc:
        fail(str(exc), 2)
    if not no_serve:
        busy = demo_data.busy_port(ports)
        if busy is not None:
            name, taken = busy
            fail(
                f"port {taken} ({name}) is in use by another program: stop it, or choose other "
                "ports with --port P (the provider at P, the e-services at P+1 and P+2) or "
                "--elicensing-port and --ejustice-port"
            )
    if "issuer" not in settings().model_fields_set:  # the provider's address follows --port
        os.environ["IDP_ISSUER"] = ports.url("provider")
    rt = runtime()
    upgrade(rt.db.engine)
    rt.keyring.ensure_initial()
    creds = demo_data.seed(
        rt,
        elicensing_url=ports.url(demo_data.ELICENSING_ID),
        ejustice_url=ports.url(demo_data.EJUSTICE_ID),
    )
    if demo_history.seed(rt):
        rollup.run(rt)  # the dashboard shows the history from the first look
    if no_serve:
        typer.echo(demo_data.banner(rt, creds))
        return
    # The e-services run on this machine: let the provider reach their JWKS and logout URLs.
    os.environ["IDP_CLIENT_FETCH_PRIVATE_ADDRESSES"] = "true"
    try:
        demo_data.run(rt, creds, ports, announce=typer.echo)
    except demo_data.DemoFailed as exc:
        fail(str(exc))


@app.command("demo-code")
def demo_code(
    admin: Annotated[
        bool, typer.Option("--admin", help="The demo administrator's code instead.")
    ] = False,
) -> None:
    """Print the demo citizen's (or administrator's) current one-time code."""
    from idp import demo as demo_data

    code = demo_data.current_code(runtime(), admin=admin)
    if code is None:
        fail("no demo citizen here yet: run `idp demo` first")
    typer.echo(code)


# config ---------------------------------------------------------------------------------------


@config_app.command("reference")
def config_reference() -> None:
    """Print the configuration reference (Markdown) generated from the settings."""
    from idp.settings_doc import reference

    typer.echo(reference(), nl=False)


def _looks_like_a_value(error: TyperException) -> bool:
    """Whether an unknown "option" is more likely an identifier that begins with '-'."""
    name = str(getattr(error, "option_name", ""))
    return not name.startswith("--")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure is one line on stderr and a non-zero exit code."""
    as_json = "--json" in (argv if argv is not None else sys.argv[1:])
    configure_logging(json=False, level="WARNING")  # stdout stays for results

    def report(message: str, code: int) -> int:
        if as_json:
            typer.echo(json.dumps({"error": message}))
        typer.echo(f"error: {message}", err=True)
        return code

    try:
        result = app(args=argv, standalone_mode=False)
        if isinstance(result, int) and result:  # a command's `typer.Exit(code)`
            return result
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0))
    except typer.Abort:
        return report("aborted", 1)
    except TyperException as error:
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        if type(error).__name__ == "NoArgsIsHelpError":
            typer.echo(message)
            return 0
        if type(error).__name__ == "NoSuchOption" and _looks_like_a_value(error):
            message += " (a value that begins with '-' goes after '--': idp clients show -- -Ab3)"
        return report(" ".join(message.split()), 2)
    except Failure as exc:
        return report(str(exc), exc.code)
    except ServiceError as exc:
        return report(str(exc), 1)
    except DatabaseUnavailable as exc:
        return report(f"database unavailable: {exc}", 1)
    except SQLAlchemyError as exc:
        return report(f"database error: {type(exc).__name__}", 1)
    return 0


def entrypoint() -> None:
    sys.exit(main())

"""The admin API: JSON under `/admin/api/v1/`, the same actions as the console and the CLI.

Callers authenticate with a Bearer access token carrying the `admin` scope, obtained with the
client-credentials grant by an e-service an administrator allowed that scope. The token is
checked as every access token is (`idp.oauth.tokens.live_access_token`): disabling that
e-service, or revoking the token, stops it at once. Every action is audited with the actor
`api:<client_id>`. Each operation is described once here (`OPERATIONS`), from which the OpenAPI
document is built.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from idp.admin import api_models as m
from idp.db.models import Client
from idp.json_input import JsonInputError, parse_json
from idp.oauth import tokens
from idp.runtime import Runtime
from idp.services import Conflict, InvalidInput, NotFound, ServiceError, feedback, transactions
from idp.services import audit as audit_service
from idp.services import clients as client_service
from idp.services import keys as key_service
from idp.services import registration as registration_service
from idp.services import users as user_service
from idp.text import storable

PREFIX = "/admin/api/v1"
MAX_BODY = 64 * 1024
MAX_LIMIT = 200
NO_STORE = {"Cache-Control": "no-store"}


class ApiError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


@dataclass
class ApiCall:
    request: Request
    db: Session
    runtime: Runtime
    client_id: str
    body: Any = None

    @property
    def actor(self) -> str:
        return f"api:{self.client_id}"

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])

    def query(self, name: str, limit: int = 200) -> str | None:
        value = self.request.query_params.get(name)
        return value[:limit] if value else None

    def number(self, name: str, default: int, *, high: int) -> int:
        raw = self.request.query_params.get(name)
        if raw is None or raw == "":
            return default
        if not raw.isdigit() or len(raw) > 9 or int(raw) > high:
            raise ApiError(400, "invalid_request", f"{name} must be a whole number up to {high}")
        return int(raw)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # below PREFIX
    summary: str
    run: Callable[[ApiCall], tuple[int, Any]]
    response: type[BaseModel]
    status: int = 200
    body: type[BaseModel] | None = None
    query: tuple[tuple[str, str, str], ...] = ()  # name, JSON type, description
    tags: tuple[str, ...] = field(default_factory=tuple)
    # Makes the body into what `run` writes, once the caller is authenticated and outside any
    # transaction: work that must not hold the database (fetching an e-service's documents).
    # It is given the body, the runtime and the path parameters.
    prepare: Callable[[Any, Runtime, Mapping[str, str]], Awaitable[Any]] | None = None
    csv: bool = False  # the body is a CSV file (text/csv), given to `run` as bytes


# Authentication -------------------------------------------------------------------------------


def bearer(request: Request) -> str:
    header = request.headers.get("authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "invalid_token", "Send an admin access token as a Bearer token.")
    return value.strip()


def authenticate(db: Session, token: str) -> str:
    """The client id behind an admin token; refuses anything else."""
    live = tokens.live_access_token(db, token)
    if live is None:
        raise ApiError(401, "invalid_token", "The access token is invalid or expired.")
    client = db.query(Client).filter(Client.client_id == live.row.client_id).one_or_none()
    if client is None or client.disabled:
        raise ApiError(401, "invalid_token", "The access token is invalid or expired.")
    allowed = client_service.ADMIN_SCOPE in (client.restricted_scopes or [])
    if (
        live.grant.user_id is not None
        or client_service.ADMIN_SCOPE not in live.row.scope.split()
        or not allowed
    ):
        raise ApiError(403, "insufficient_scope", "The token does not grant the admin scope.")
    return client.client_id


# Input hygiene ------------------------------------------------------------------------------


def _clean(value: Any) -> bool:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return all(_clean(k) and _clean(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_clean(v) for v in value)
    return True


JSON_TYPES = ("application/json", "")
MERGE_PATCH = "application/merge-patch+json"  # RFC 7396


async def _read_body(request: Request, model: type[BaseModel]) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    accepted = (*JSON_TYPES, MERGE_PATCH) if request.method == "PATCH" else JSON_TYPES
    if content_type not in accepted:
        raise ApiError(415, "invalid_request", "Send a JSON object (application/json).")
    raw = await request.body()
    try:
        data = parse_json(raw if raw.strip() else b"{}", max_size=MAX_BODY)
    except JsonInputError as exc:
        raise ApiError(400, "invalid_request", f"The body is {exc}.") from None
    if not isinstance(data, dict) or not _clean(data):
        raise ApiError(400, "invalid_request", "The body must be a JSON object of clean text.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(400, "invalid_request", f"{where}: {first['msg']}") from None


async def _read_csv(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "text/csv":
        raise ApiError(415, "invalid_request", "Send a CSV file (text/csv).")
    return await request.body()


def _error(status: int, error: str, description: str, **headers: str) -> Response:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={**NO_STORE, **headers},
    )


SERVICE_STATUS = {InvalidInput: 400, NotFound: 404, Conflict: 409}


def _service_error(error: ServiceError) -> Response:
    return _error(SERVICE_STATUS.get(type(error), 400), error.code, str(error))


def endpoint(operation: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def view(request: Request) -> Response:
        try:
            token = bearer(request)
            params = [*request.path_params.values(), *request.query_params.values()]
            if not all(storable(str(p)) for p in params):
                raise ApiError(400, "invalid_request", "Parameters must be clean text.")
            body = None
            if operation.body is not None or operation.prepare is not None or operation.csv:
                # Only an authenticated caller's body is read, parsed and prepared.
                await run_in_threadpool(_authenticated, request, token)
            if operation.body is not None:
                body = await _read_body(request, operation.body)
            elif operation.csv:
                body = await _read_csv(request)
        except ApiError as error:
            return _failure(error)
        if operation.prepare is not None:
            path = {name: str(value) for name, value in request.path_params.items()}
            try:
                body = await operation.prepare(body, request.app.state.runtime, path)
            except ServiceError as error:
                return _service_error(error)
        return await run_in_threadpool(_run, request, token, body)

    def _authenticated(request: Request, token: str) -> None:
        runtime: Runtime = request.app.state.runtime
        with runtime.db.read() as db:
            authenticate(db, token)

    def _run(request: Request, token: str, body: Any) -> Response:
        runtime: Runtime = request.app.state.runtime
        try:
            with runtime.db.transaction() as db:
                client_id = authenticate(db, token)
                status, data = operation.run(ApiCall(request, db, runtime, client_id, body))
        except ApiError as error:
            return _failure(error)
        except ServiceError as error:
            return _service_error(error)
        return JSONResponse(data, status_code=status, headers=NO_STORE)

    return view


def _failure(error: ApiError) -> Response:
    headers = {}
    if error.status in (401, 403):
        challenge = f'Bearer realm="admin", error="{error.error}"'
        if error.status == 403:
            challenge += f', scope="{client_service.ADMIN_SCOPE}"'
        headers["WWW-Authenticate"] = challenge
    return _error(error.status, error.error, error.description, **headers)


# Operations ---------------------------------------------------------------------------------


def _page(call: ApiCall) -> tuple[int, int]:
    return call.number("limit", 20, high=MAX_LIMIT) or 1, call.number("offset", 0, high=10**8)


def list_clients(call: ApiCall) -> tuple[int, Any]:
    limit, offset = _page(call)
    rows, total = client_service.search_clients(
        call.db, call.query("q"), limit=limit, offset=offset
    )
    return 200, {"items": [client_service.describe(c) for c in rows], "total": total}


async def check_client(
    body: m.ClientIn, runtime: Runtime, _path: Mapping[str, str]
) -> client_service.CheckedClient:
    """The e-service checked, its sector identifier URI fetched (before the transaction)."""
    new = client_service.NewClient(**body.model_dump())
    return await client_service.check_client(new, runtime.settings)


async def check_changes(
    body: m.ClientPatch, runtime: Runtime, path: Mapping[str, str]
) -> client_service.CheckedClient:
    """The changes checked against the e-service as stored (read in a transaction of its own),
    its sector identifier URI fetched if it or the redirect URIs change (before the
    transaction that writes)."""

    def stored() -> Client:
        with runtime.db.read() as db:
            return client_service.get_client(db, path["client_id"])

    changes = client_service.ClientChanges(body.model_dump(exclude_unset=True))
    return await client_service.check_client(
        changes, runtime.settings, current=await run_in_threadpool(stored)
    )


def register_client(call: ApiCall) -> tuple[int, Any]:
    registered = client_service.register_client(call.db, call.body, actor=call.actor)
    data = client_service.describe(registered.client)
    data["client_secret"] = registered.client_secret
    return 201, data


def show_client(call: ApiCall) -> tuple[int, Any]:
    return 200, client_service.describe(client_service.get_client(call.db, call.path("client_id")))


def update_client(call: ApiCall) -> tuple[int, Any]:
    updated = client_service.update_client(
        call.db, call.path("client_id"), call.body, actor=call.actor
    )
    return 200, client_service.describe(updated.client)


def rotate_client_secret(call: ApiCall) -> tuple[int, Any]:
    registered = client_service.rotate_secret(call.db, call.path("client_id"), actor=call.actor)
    return 200, {
        "client_id": registered.client.client_id,
        "client_secret": registered.client_secret,
    }


def _client_disabled(disabled: bool) -> Callable[[ApiCall], tuple[int, Any]]:
    def run(call: ApiCall) -> tuple[int, Any]:
        client = client_service.set_disabled(
            call.db, call.path("client_id"), disabled, actor=call.actor
        )
        return 200, client_service.describe(client)

    return run


def list_citizens(call: ApiCall) -> tuple[int, Any]:
    limit, offset = _page(call)
    rows, total = user_service.search_users(call.db, call.query("q"), limit=limit, offset=offset)
    return 200, {"items": [user_service.describe(u) for u in rows], "total": total}


def show_citizen(call: ApiCall) -> tuple[int, Any]:
    return 200, user_service.describe(user_service.get_user(call.db, call.path("username")))


def _citizen_action(
    action: Callable[[ApiCall, str], Any],
) -> Callable[[ApiCall], tuple[int, Any]]:
    def run(call: ApiCall) -> tuple[int, Any]:
        result = action(call, call.path("username"))
        user = result[0] if isinstance(result, tuple) else result
        return 200, user_service.describe(user)

    return run


def end_citizen_sessions(call: ApiCall) -> tuple[int, Any]:
    user, count = user_service.end_sessions(call.db, call.path("username"), actor=call.actor)
    return 200, {"username": user.username, "ended": count}


def list_keys(call: ApiCall) -> tuple[int, Any]:
    states = key_service.list_keys(call.runtime.keyring)
    return 200, {"items": [key_service.describe(s) for s in states]}


def rotate_key(call: ApiCall) -> tuple[int, Any]:
    body: m.RotateKeyIn = call.body
    state = key_service.rotate_key(
        call.db,
        call.runtime.keyring,
        call.runtime.settings,
        body.alg,
        actor=call.actor,
        immediately=body.immediately,
    )
    return 201, key_service.describe(state)


def retire_key(call: ApiCall) -> tuple[int, Any]:
    body: m.RetireKeyIn = call.body
    kid = call.path("kid")
    if not any(s.key.kid == kid for s in key_service.list_keys(call.runtime.keyring)):
        raise NotFound(f"no key {kid!r}")
    state = key_service.retire_key(
        call.db, call.runtime.keyring, kid, actor=call.actor, unpublish=body.unpublish
    )
    return 200, key_service.describe(state)


def search_audit(call: ApiCall) -> tuple[int, Any]:
    limit, offset = _page(call)
    username = call.query("user", 150)
    user_id = None
    if username:
        try:
            user_id = user_service.get_user(call.db, username).id
        except NotFound:
            user_id = -1
    filters = audit_service.Filters(
        type=call.query("type", 64),
        actor=call.query("actor"),
        user_id=user_id,
        client_id=call.query("client_id", 128),
        outcome=call.query("outcome", 32),
        since=audit_service.parse_instant(call.query("since", 40)),
        until=audit_service.parse_instant(call.query("until", 40), end_of_day=True),
    )
    rows, total = audit_service.search(call.db, filters, limit=limit, offset=offset)
    return 200, {"items": [audit_service.describe(e) for e in rows], "total": total}


def verify_audit(call: ApiCall) -> tuple[int, Any]:
    return 200, audit_service.verify(call.db).as_dict()


def issue_initial_token(call: ApiCall) -> tuple[int, Any]:
    body: m.InitialTokenIn = call.body
    settings = call.runtime.settings
    issued = registration_service.issue_initial_token(
        call.db,
        uses=body.uses,
        expires_in=body.expires_in or settings.initial_access_token_lifetime,
        actor=call.actor,
        note=body.note,
    )
    return 201, {
        "initial_access_token": issued.token,
        "uses": issued.uses,
        "expires_at": issued.expires_at.isoformat(),
        "registration_endpoint": f"{settings.issuer}/register",
    }


def indicator_settings(call: ApiCall) -> tuple[int, Any]:
    body: m.IndicatorSettingsIn = call.body
    client = client_service.set_indicator_settings(
        call.db,
        call.path("client_id"),
        public_stats=body.public_stats,
        feedback_sampling_rate=body.feedback_sampling_rate,
        actor=call.actor,
    )
    return 200, client_service.describe(client)


def _month(call: ApiCall, name: str) -> date | None:
    value = call.query(name, 20)
    if value is None:
        return None
    found = re.fullmatch(r"([0-9]{4})-([0-9]{2})", value)
    if found is None or not 1 <= int(found.group(2)) <= 12:
        raise ApiError(400, "invalid_request", f"{name} must be a month written YYYY-MM")
    return date(int(found.group(1)), int(found.group(2)), 1)


def _months(call: ApiCall) -> transactions.MonthFilter:
    return transactions.MonthFilter(
        call.query("client_id", 128), _month(call, "since"), _month(call, "until")
    )


def list_channel_totals(call: ApiCall) -> tuple[int, Any]:
    return 200, {"items": transactions.channel_totals(call.db, _months(call))}


def set_channel_totals(call: ApiCall) -> tuple[int, Any]:
    body: m.ChannelTotalsIn = call.body
    items = [item.model_dump() for item in body.items]
    return 200, {"written": transactions.set_channel_totals(call.db, items, actor=call.actor)}


def import_channel_totals(call: ApiCall) -> tuple[int, Any]:
    written = transactions.import_channel_totals(call.db, call.body, actor=call.actor)
    return 200, {"written": written}


def list_costs(call: ApiCall) -> tuple[int, Any]:
    currency = call.runtime.settings.stats_currency
    return 200, {"items": transactions.costs(call.db, _months(call), currency=currency)}


def set_costs(call: ApiCall) -> tuple[int, Any]:
    body: m.CostsIn = call.body
    items = [item.model_dump() for item in body.items]
    return 200, {"written": transactions.set_costs(call.db, items, actor=call.actor)}


def import_costs(call: ApiCall) -> tuple[int, Any]:
    return 200, {"written": transactions.import_costs(call.db, call.body, actor=call.actor)}


def _day(call: ApiCall, name: str) -> date | None:
    value = call.query(name, 20)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(
            400, "invalid_request", f"{name} must be a date written YYYY-MM-DD"
        ) from None


def list_comments(call: ApiCall) -> tuple[int, Any]:
    limit, offset = _page(call)
    chosen = feedback.CommentFilter(
        call.query("client_id", 128), _day(call, "since"), _day(call, "until")
    )
    rows, total = feedback.comments(call.db, chosen, limit=limit, offset=offset)
    return 200, {"items": [feedback.describe_comment(r) for r in rows], "total": total}


MONTHS = (
    ("client_id", "string", "One e-service only."),
    ("since", "string", "From this month (YYYY-MM)."),
    ("until", "string", "Through this month (YYYY-MM)."),
)
PAGING = (
    ("limit", "integer", "Items per page (1-200, default 20)."),
    ("offset", "integer", "Items to skip."),
)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/clients",
        "List and search e-services",
        list_clients,
        m.ClientPage,
        query=(("q", "string", "Part of the name or client id."), *PAGING),
        tags=("e-services",),
    ),
    Operation(
        "POST",
        "/clients",
        "Register an e-service (the secret is shown once)",
        register_client,
        m.RegisteredOut,
        status=201,
        body=m.ClientIn,
        tags=("e-services",),
        prepare=check_client,
    ),
    Operation(
        "GET",
        "/clients/{client_id}",
        "Show an e-service",
        show_client,
        m.ClientOut,
        tags=("e-services",),
    ),
    Operation(
        "PATCH",
        "/clients/{client_id}",
        "Change an e-service (JSON merge patch; switching to a secret-based auth method issues "
        "no secret: rotate-secret does)",
        update_client,
        m.ClientOut,
        body=m.ClientPatch,
        tags=("e-services",),
        prepare=check_changes,
    ),
    Operation(
        "POST",
        "/clients/{client_id}/rotate-secret",
        "Issue a new client secret (shown once)",
        rotate_client_secret,
        m.SecretOut,
        tags=("e-services",),
    ),
    Operation(
        "POST",
        "/clients/{client_id}/disable",
        "Disable an e-service; its tokens stop working",
        _client_disabled(True),
        m.ClientOut,
        tags=("e-services",),
    ),
    Operation(
        "POST",
        "/clients/{client_id}/enable",
        "Enable an e-service",
        _client_disabled(False),
        m.ClientOut,
        tags=("e-services",),
    ),
    Operation(
        "POST",
        "/clients/{client_id}/indicator-settings",
        "Show an e-service on the public /stats page, or set its feedback sampling rate",
        indicator_settings,
        m.ClientOut,
        body=m.IndicatorSettingsIn,
        tags=("indicators",),
    ),
    Operation(
        "GET",
        "/channel-totals",
        "List the e-services' transactions by month and channel",
        list_channel_totals,
        m.ChannelTotalList,
        query=MONTHS,
        tags=("indicators",),
    ),
    Operation(
        "POST",
        "/channel-totals",
        "Store transactions by month and channel (all items or none)",
        set_channel_totals,
        m.WrittenOut,
        body=m.ChannelTotalsIn,
        tags=("indicators",),
    ),
    Operation(
        "POST",
        "/channel-totals/import",
        "Import transactions from CSV: client_id,month,channel,transactions (all lines or none)",
        import_channel_totals,
        m.WrittenOut,
        csv=True,
        tags=("indicators",),
    ),
    Operation(
        "GET",
        "/costs",
        "List the e-services' monthly costs",
        list_costs,
        m.CostList,
        query=MONTHS,
        tags=("indicators",),
    ),
    Operation(
        "POST",
        "/costs",
        "Store monthly costs (all items or none)",
        set_costs,
        m.WrittenOut,
        body=m.CostsIn,
        tags=("indicators",),
    ),
    Operation(
        "POST",
        "/costs/import",
        "Import monthly costs from CSV: client_id,month,amount (all lines or none)",
        import_costs,
        m.WrittenOut,
        csv=True,
        tags=("indicators",),
    ),
    Operation(
        "GET",
        "/feedback/comments",
        "Read the comments citizens left with their ratings (newest first)",
        list_comments,
        m.CommentPage,
        query=(
            ("client_id", "string", "One e-service only."),
            ("since", "string", "Left on or after this date (YYYY-MM-DD)."),
            ("until", "string", "Left on or before this date (YYYY-MM-DD)."),
            *PAGING,
        ),
        tags=("indicators",),
    ),
    Operation(
        "GET",
        "/citizens",
        "List and search accounts",
        list_citizens,
        m.CitizenPage,
        query=(("q", "string", "Part of the username, email or family name."), *PAGING),
        tags=("citizens",),
    ),
    Operation(
        "GET",
        "/citizens/{username}",
        "Show an account (never its secrets)",
        show_citizen,
        m.CitizenOut,
        tags=("citizens",),
    ),
    Operation(
        "POST",
        "/citizens/{username}/disable",
        "Disable an account and end its sessions",
        _citizen_action(lambda c, u: user_service.set_disabled(c.db, u, True, actor=c.actor)),
        m.CitizenOut,
        tags=("citizens",),
    ),
    Operation(
        "POST",
        "/citizens/{username}/enable",
        "Enable an account",
        _citizen_action(lambda c, u: user_service.set_disabled(c.db, u, False, actor=c.actor)),
        m.CitizenOut,
        tags=("citizens",),
    ),
    Operation(
        "POST",
        "/citizens/{username}/unlock",
        "Lift a sign-in lock",
        _citizen_action(lambda c, u: user_service.unlock(c.db, u, actor=c.actor)),
        m.CitizenOut,
        tags=("citizens",),
    ),
    Operation(
        "POST",
        "/citizens/{username}/reset-second-factor",
        "Remove the authenticator app and recovery codes",
        _citizen_action(lambda c, u: user_service.reset_second_factor(c.db, u, actor=c.actor)),
        m.CitizenOut,
        tags=("citizens",),
    ),
    Operation(
        "POST",
        "/citizens/{username}/end-sessions",
        "End every session of an account",
        end_citizen_sessions,
        m.SessionsEndedOut,
        tags=("citizens",),
    ),
    Operation("GET", "/keys", "List signing keys", list_keys, m.KeyList, tags=("keys",)),
    Operation(
        "POST",
        "/keys/rotate",
        "Publish a new signing key",
        rotate_key,
        m.KeyOut,
        status=201,
        body=m.RotateKeyIn,
        tags=("keys",),
    ),
    Operation(
        "POST",
        "/keys/{kid}/retire",
        "Stop signing with a key",
        retire_key,
        m.KeyOut,
        body=m.RetireKeyIn,
        tags=("keys",),
    ),
    Operation(
        "GET",
        "/audit",
        "Search the audit log (newest first)",
        search_audit,
        m.AuditPage,
        query=(
            ("type", "string", "An event type, or a prefix ending in '.'."),
            ("actor", "string", "Who acted (e.g. admin:alice, api:ops)."),
            ("user", "string", "The username the entries are about."),
            ("client_id", "string", "The e-service the entries are about."),
            ("outcome", "string", "success or failure."),
            ("since", "string", "From this date (YYYY-MM-DD) or date-time, UTC."),
            ("until", "string", "Through this date (YYYY-MM-DD) or before a date-time."),
            *PAGING,
        ),
        tags=("audit",),
    ),
    Operation(
        "GET",
        "/audit/verify",
        "Verify the audit chain",
        verify_audit,
        m.VerificationOut,
        tags=("audit",),
    ),
    Operation(
        "POST",
        "/initial-tokens",
        "Issue an initial access token for dynamic registration (shown once)",
        issue_initial_token,
        m.InitialTokenOut,
        status=201,
        body=m.InitialTokenIn,
        tags=("e-services",),
    ),
)

HANDLERS = {(op.method, op.path): endpoint(op) for op in OPERATIONS}


def handler(method: str, path: str) -> Callable[[Request], Awaitable[Response]]:
    """The view of one operation, for the routes table."""
    return HANDLERS[(method, path)]

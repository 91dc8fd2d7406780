"""Dynamic client registration (RFC 7591) and its management (RFC 7592).

An e-service registers itself with an initial access token an administrator issued
(`idp clients initial-token`); each attempt spends one of its uses, committed before anything
else, so a refused registration counts too and one token cannot repeat a refused one (or its
fetch) forever. The metadata is checked by the very functions the CLI, the console and the
admin API use (`idp.services.clients.check_client`, then `register_client`), so a
registration can obtain nothing an administrator could not give: never the first-party flag,
a restricted scope or the admin scope; the sector identifier URI is fetched between the two,
outside any transaction. The answer carries a registration access token for
`/register/<client_id>` (read, update, delete).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from idp.db.models import Client
from idp.json_input import JsonInputError, parse_json
from idp.runtime import Runtime
from idp.services import InvalidInput, ServiceError
from idp.services import clients as client_service
from idp.services import registration as registration_service

MAX_BODY = 64 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
STRINGS = (
    "client_name",
    "token_endpoint_auth_method",
    "scope",
    "jwks_uri",
    "logo_uri",
    "backchannel_logout_uri",
    "frontchannel_logout_uri",
    "subject_type",
    "sector_identifier_uri",
    "id_token_signed_response_alg",
    "userinfo_signed_response_alg",
)
LISTS = ("redirect_uris", "post_logout_redirect_uris", "grant_types", "response_types", "contacts")
# What only administrators set, and an update by the e-service leaves as they set it.
ADMINISTERED = frozenset(
    {
        "first_party",
        "restricted_scopes",
        "allowed_claims",
        "legal_basis",
        "access_token_format",
        "require_pkce",
    }
)


class RegistrationError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def _error(error: RegistrationError) -> Response:
    headers = dict(NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = f'Bearer error="{error.error}"'
    return JSONResponse(
        {"error": error.error, "error_description": error.description},
        status_code=error.status,
        headers=headers,
    )


def _bearer(request: Request) -> str:
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise RegistrationError("invalid_token", "A Bearer token is required.", 401)
    return value.strip()


async def _metadata(request: Request) -> dict[str, Any]:
    """The metadata of the body; read only once the caller's token has been checked."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise RegistrationError("invalid_client_metadata", "Send the metadata as a JSON object.")
    try:
        data = parse_json(await request.body(), max_size=MAX_BODY)
    except JsonInputError as exc:
        raise RegistrationError("invalid_client_metadata", f"The body is {exc}.") from None
    if not isinstance(data, dict):
        raise RegistrationError("invalid_client_metadata", "The metadata must be a JSON object.")
    return data


def new_client(data: dict[str, Any], *, client_id: str | None = None) -> client_service.NewClient:
    """Registration metadata (RFC 7591 §2, OIDC Registration §2) as the service's input."""
    for name in STRINGS:
        if data.get(name) is not None and not isinstance(data[name], str):
            raise InvalidInput(f"{name} must be a string")
    for name in LISTS:
        value = data.get(name)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise InvalidInput(f"{name} must be an array of strings")
    if data.get("jwks") is not None and not isinstance(data["jwks"], dict):
        raise InvalidInput("jwks must be a JSON object")
    response_types = data.get("response_types")
    if response_types is not None and response_types not in ([], ["code"]):
        raise InvalidInput("only the response type code is supported")
    name = data.get("client_name") or ""
    if not name:
        raise InvalidInput("client_name is required")
    return client_service.NewClient(
        name=name,
        client_id=client_id,
        redirect_uris=list(data.get("redirect_uris") or []),
        post_logout_redirect_uris=list(data.get("post_logout_redirect_uris") or []),
        backchannel_logout_uri=data.get("backchannel_logout_uri"),
        frontchannel_logout_uri=data.get("frontchannel_logout_uri"),
        auth_method=data.get("token_endpoint_auth_method") or "client_secret_basic",
        jwks_uri=data.get("jwks_uri"),
        jwks=data.get("jwks"),
        grant_types=list(data.get("grant_types") or client_service.DEFAULT_GRANT_TYPES),
        scope=data.get("scope") or "openid",
        subject_type=data.get("subject_type") or "public",
        sector_identifier_uri=data.get("sector_identifier_uri"),
        id_token_signed_response_alg=data.get("id_token_signed_response_alg"),
        userinfo_signed_response_alg=data.get("userinfo_signed_response_alg"),
        logo_uri=data.get("logo_uri"),
        contacts=list(data.get("contacts") or []),
    )


def _refused(error: ServiceError) -> RegistrationError:
    message = str(error)
    code = "invalid_redirect_uri" if "redirect URI" in message else "invalid_client_metadata"
    return RegistrationError(code, message)


def metadata_of(client: Client, issuer: str) -> dict[str, Any]:
    """What the provider registered (RFC 7591 §3.2.1), never the secret."""
    data: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": int(client.created_at.astimezone(UTC).timestamp()),
        "client_name": client.name,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "grant_types": client.grant_types,
        "response_types": ["code"] if "authorization_code" in client.grant_types else [],
        "scope": client.scope,
        "subject_type": client.subject_type,
        "contacts": client.contacts or [],
        "registration_client_uri": f"{issuer}/register/{client.client_id}",
    }
    optional = {
        "logo_uri": client.logo_uri,
        "jwks_uri": client.jwks_uri,
        "jwks": client.jwks,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "frontchannel_logout_uri": client.frontchannel_logout_uri,
        "sector_identifier_uri": client.sector_identifier_uri,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "userinfo_signed_response_alg": client.userinfo_signed_response_alg,
    }
    data.update({k: v for k, v in optional.items() if v is not None})
    if client.token_endpoint_auth_method in client_service.SECRET_METHODS:
        data["client_secret_expires_at"] = 0
    return data


INVALID_INITIAL_TOKEN = ("invalid_token", "The initial access token is invalid or used up.", 401)
INVALID_REGISTRATION_TOKEN = ("invalid_token", "The registration access token is not valid.", 401)


async def register(request: Request) -> Response:
    """RFC 7591. The initial access token is checked before the body is read: without one,
    nothing the caller sent is parsed."""
    runtime: Runtime = request.app.state.runtime

    def token_usable(token: str) -> bool:
        with runtime.db.read() as db:
            return registration_service.initial_token_usable(db, token)

    try:
        token = _bearer(request)
        if not await run_in_threadpool(token_usable, token):
            raise RegistrationError(*INVALID_INITIAL_TOKEN)
        data = await _metadata(request)
    except RegistrationError as error:
        return _error(error)

    def spend() -> int | None:
        with runtime.db.transaction() as db:
            return registration_service.use_initial_token(db, token)

    token_id = await run_in_threadpool(spend)  # committed: a refused registration counts too
    if token_id is None:  # used up meanwhile
        return _error(RegistrationError(*INVALID_INITIAL_TOKEN))
    try:
        # Outside any transaction: a sector identifier URI is fetched here.
        checked = await client_service.check_client(new_client(data), runtime.settings)
    except ServiceError as error:
        return _error(_refused(error))

    def work() -> Response:
        try:
            with runtime.db.transaction() as db:
                registered = client_service.register_client(
                    db, checked, actor=f"dcr:initial-token-{token_id}"
                )
                access = registration_service.new_registration_token(registered.client)
                body = metadata_of(registered.client, runtime.settings.issuer)
        except ServiceError as error:
            return _error(_refused(error))
        if registered.client_secret:
            body["client_secret"] = registered.client_secret
        body["registration_access_token"] = access
        return JSONResponse(body, status_code=201, headers=NO_STORE)

    return await run_in_threadpool(work)


def _registered(db: Session, token: str, client_id: str) -> Client:
    """The e-service a registration access token manages, if it is `client_id` and enabled."""
    client = registration_service.client_for_registration_token(db, token)
    if client is None or client.client_id != client_id or client.disabled:
        raise RegistrationError(*INVALID_REGISTRATION_TOKEN)
    return client


async def configuration(request: Request) -> Response:
    """RFC 7592: GET reads, PUT replaces, DELETE removes (disables) the registration. A PUT's
    body is read only once its registration access token has been checked; the new metadata
    is checked outside any transaction (fetching the sector identifier URI when it or the
    redirect URIs change), then written. A PUT that moves the e-service to a secret-based
    auth method is answered with its new secret."""
    client_id = str(request.path_params["client_id"])[:128]
    runtime: Runtime = request.app.state.runtime

    def check(token: str) -> None:
        with runtime.db.read() as db:
            _registered(db, token, client_id)

    try:
        token = _bearer(request)
        data = None
        if request.method == "PUT":
            await run_in_threadpool(check, token)
            data = await _metadata(request)
    except RegistrationError as error:
        return _error(error)

    def current() -> Client | Response:
        try:
            with runtime.db.read() as db:
                return _registered(db, token, client_id)
        except RegistrationError as error:
            return _error(error)

    def work(checked: client_service.CheckedClient | None) -> Response:
        try:
            with runtime.db.transaction() as db:
                client = _registered(db, token, client_id)
                actor = f"dcr:{client_id}"
                if request.method == "DELETE":
                    client_service.set_disabled(db, client_id, True, actor=actor)
                    client.registration_token_hash = None
                    return Response(status_code=204, headers=NO_STORE)
                secret = None
                if checked is not None:
                    client = client_service.update_client(
                        db, client_id, checked, actor=actor
                    ).client
                    if client.token_endpoint_auth_method in client_service.SECRET_METHODS and (
                        client.secret_hash is None
                    ):  # now secret-based: the answer gives the secret (RFC 7592 §2.2)
                        secret = client_service.rotate_secret(db, client_id, actor=actor)
                body = metadata_of(client, runtime.settings.issuer)
                if secret is not None:
                    body["client_secret"] = secret.client_secret
                return JSONResponse(body, headers=NO_STORE)
        except RegistrationError as error:
            return _error(error)
        except ServiceError as error:
            return _error(_refused(error))

    if data is None:
        return await run_in_threadpool(work, None)
    found = await run_in_threadpool(current)
    if isinstance(found, Response):
        return found
    try:
        if data.get("client_id", client_id) != client_id:
            raise InvalidInput("client_id does not match the registration")
        # The metadata replaces what the e-service registered; what only administrators set
        # stays as they set it.
        new = new_client(data)
        replaced = {
            name: getattr(new, name)
            for name in client_service.UPDATABLE
            if name not in ADMINISTERED
        }
        changes = client_service.ClientChanges(replaced)
        checked = await client_service.check_client(changes, runtime.settings, current=found)
    except ServiceError as error:
        return _error(_refused(error))
    return await run_in_threadpool(work, checked)

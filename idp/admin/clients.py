"""Admin pages for e-services: list and search, register (the wizard), view, rotate the
secret, disable and enable."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from idp.admin.pages import (
    MAX_FIELD,
    PAGE_SIZE,
    Call,
    admin_view,
    current_page,
    done,
    form_checked,
    form_field,
    pagination,
    reason,
    show,
)
from idp.i18n import N_
from idp.json_input import JsonInputError, parse_json
from idp.oauth.claims import CLAIM_SCOPE
from idp.oauth.scopes import KNOWN_SCOPES
from idp.runtime import Runtime
from idp.services import InvalidInput, ServiceError
from idp.services import clients as client_service

ALL_SCOPES = (*KNOWN_SCOPES, client_service.ADMIN_SCOPE)
CLAIMS = tuple(name for name, scope in CLAIM_SCOPE.items() if scope != "openid")
NOTICES = {
    "disabled": N_("The e-service is disabled. Its tokens no longer work."),
    "enabled": N_("The e-service is enabled again."),
}


def detail_path(client_id: str) -> str:
    return f"/admin/clients/{client_id}"


def _back_to_detail(request: Request) -> str:
    return detail_path(str(request.path_params["client_id"]))


# List ---------------------------------------------------------------------------------------


def _list(call: Call) -> Response:
    query = call.query("q")
    number = current_page(call.request)
    rows, total = client_service.search_clients(
        call.db, query, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
    )
    return show(
        call,
        "admin/clients.html",
        {
            "title": N_("E-services"),
            "query": query,
            "clients": [client_service.describe(c) for c in rows],
            "pagination": pagination(call.request, total, number),
        },
    )


clients_page = admin_view(_list)


# Register -------------------------------------------------------------------------------------


def _blank() -> dict[str, Any]:
    return {
        "name": "",
        "client_id": "",
        "logo_uri": "",
        "contacts": "",
        "redirect_uris": "",
        "post_logout_redirect_uris": "",
        "backchannel_logout_uri": "",
        "frontchannel_logout_uri": "",
        "auth_method": "client_secret_basic",
        "jwks_uri": "",
        "jwks": "",
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "profile"],
        "allowed_claims": [],
        "subject_type": "public",
        "sector_identifier_uri": "",
        "access_token_format": "opaque",
        "first_party": False,
        "legal_basis": "",
    }


def _wizard(call: Call, values: dict[str, Any], problem: str | None, status: int) -> Response:
    return show(
        call,
        "admin/client_new.html",
        {
            "title": N_("Register an e-service"),
            "values": values,
            "problem": problem,
            "auth_methods": client_service.AUTH_METHODS,
            "grant_types": client_service.GRANT_TYPES,
            "subject_types": client_service.SUBJECT_TYPES,
            "token_formats": client_service.ACCESS_TOKEN_FORMATS,
            "scopes": ALL_SCOPES,
            "claims": CLAIMS,
        },
        status_code=status,
    )


def _submitted(form: FormData | None) -> dict[str, Any]:
    def field(name: str, limit: int = MAX_FIELD) -> str:
        return form_field(form, name, limit)

    def many(name: str, allowed: tuple[str, ...]) -> list[str]:
        values = form.getlist(name) if form is not None else []
        return [v for v in values if isinstance(v, str) and v in allowed]

    return {
        "name": field("name", 200),
        "client_id": field("client_id", 128),
        "logo_uri": field("logo_uri", 2000),
        "contacts": field("contacts"),
        "redirect_uris": field("redirect_uris"),
        "post_logout_redirect_uris": field("post_logout_redirect_uris"),
        "backchannel_logout_uri": field("backchannel_logout_uri", 2000),
        "frontchannel_logout_uri": field("frontchannel_logout_uri", 2000),
        "auth_method": field("auth_method", 32),
        "jwks_uri": field("jwks_uri", 2000),
        "jwks": field("jwks", client_service.MAX_JWKS),
        "grant_types": many("grant_types", client_service.GRANT_TYPES),
        "scopes": many("scopes", ALL_SCOPES),
        "allowed_claims": many("allowed_claims", CLAIMS),
        "subject_type": field("subject_type", 16),
        "sector_identifier_uri": field("sector_identifier_uri", 2000),
        "access_token_format": field("access_token_format", 16),
        "first_party": form_checked(form, "first_party"),
        "legal_basis": field("legal_basis", client_service.MAX_LEGAL_BASIS + 1),
    }


def new_client(values: dict[str, Any]) -> client_service.NewClient:
    """The service's input from the wizard's fields (raises InvalidInput on unreadable JSON)."""
    jwks = None
    if values["jwks"]:
        try:
            jwks = parse_json(values["jwks"], max_size=client_service.MAX_JWKS)
        except JsonInputError:
            raise InvalidInput(N_("the JWKS is not valid JSON")) from None
    scopes = list(values["scopes"])
    return client_service.NewClient(
        name=values["name"],
        client_id=values["client_id"] or None,
        logo_uri=values["logo_uri"] or None,
        contacts=values["contacts"].split(),
        redirect_uris=values["redirect_uris"].split(),
        post_logout_redirect_uris=values["post_logout_redirect_uris"].split(),
        backchannel_logout_uri=values["backchannel_logout_uri"] or None,
        frontchannel_logout_uri=values["frontchannel_logout_uri"] or None,
        auth_method=values["auth_method"],
        jwks_uri=values["jwks_uri"] or None,
        jwks=jwks,
        grant_types=list(values["grant_types"]),
        scope=" ".join(scopes),
        restricted_scopes=[s for s in scopes if s in client_service.GRANTABLE_RESTRICTED],
        allowed_claims=list(values["allowed_claims"]),
        subject_type=values["subject_type"],
        sector_identifier_uri=values["sector_identifier_uri"] or None,
        access_token_format=values["access_token_format"],
        first_party=values["first_party"],
        legal_basis=values["legal_basis"] or None,
    )


def _register_form(call: Call) -> Response:
    return _wizard(call, _blank(), None, 200)


async def _check(form: FormData | None, runtime: Runtime) -> client_service.CheckedClient:
    """The wizard's e-service checked, its sector identifier URI fetched (no transaction)."""
    return await client_service.check_client(new_client(_submitted(form)), runtime.settings)


def _register(call: Call) -> Response:
    registered = client_service.register_client(call.db, call.prepared, actor=call.admin.actor)
    return _secret_page(call, registered, N_("The e-service is registered"))


def _register_refused(call: Call, error: ServiceError) -> Response:
    return _wizard(call, _submitted(call.form), reason(call, error), 400)


def _secret_page(call: Call, registered: client_service.Registered, title: str) -> Response:
    """The client secret, shown this once (the answer to the POST itself, never cached: the
    secret is not stored anywhere it could be shown again)."""
    return show(
        call,
        "admin/client_secret.html",
        {
            "title": title,
            "client": client_service.describe(registered.client),
            "secret": registered.client_secret,
        },
    )


register_page = admin_view(_register_form, fresh=True)  # its POST will need it: ask first
register_submit = admin_view(
    _register,
    back=lambda request: "/admin/clients/new",
    prepare=_check,
    on_error=_register_refused,
)


# One e-service ----------------------------------------------------------------------------------


def _detail(call: Call) -> Response:
    client = client_service.get_client(call.db, str(call.request.path_params["client_id"]))
    code = call.query("done")
    return show(
        call,
        "admin/client.html",
        {
            "title": N_("E-service"),
            "client": client_service.describe(client),
            "notice": NOTICES.get(code),
            "secret_based": client.token_endpoint_auth_method in client_service.SECRET_METHODS,
        },
    )


def _rotate(call: Call) -> Response:
    client_id = str(call.request.path_params["client_id"])
    registered = client_service.rotate_secret(call.db, client_id, actor=call.admin.actor)
    return _secret_page(call, registered, N_("New client secret"))


def _set_disabled(disabled: bool) -> Any:
    def action(call: Call) -> Response:
        client_id = str(call.request.path_params["client_id"])
        client_service.set_disabled(call.db, client_id, disabled, actor=call.admin.actor)
        return done(detail_path(client_id), "disabled" if disabled else "enabled")

    return action


client_page = admin_view(_detail)
rotate_secret = admin_view(_rotate, back=_back_to_detail)
disable_client = admin_view(_set_disabled(True), back=_back_to_detail)
enable_client = admin_view(_set_disabled(False), back=_back_to_detail)

"""HTTP views of the protocol: thin, they parse, call and render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from idp.auth import interactions, sessions
from idp.csrf import verify_csrf
from idp.db.deferred import DeferredRows, defer_rows
from idp.i18n import N_, negotiate
from idp.oauth import assertion_keys, endpoints
from idp.oauth import authorize as flow
from idp.oauth.claims import CLAIM_LABELS, SCOPE_LABELS
from idp.oauth.documents import Document, DocumentResponse, PublishedDocuments
from idp.oauth.server import HttpInput, ProtocolServer, read_input
from idp.runtime import Runtime
from idp.templating import render


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def openid_configuration(request: Request) -> Response:
    return _document(request, _documents(request).discovery())


async def jwks(request: Request) -> Response:
    return _document(request, _documents(request).jwks())


def _documents(request: Request) -> PublishedDocuments:
    documents: PublishedDocuments = request.app.state.documents
    return documents


def _document(request: Request, document: Document) -> Response:
    return DocumentResponse(
        document, method=request.method, if_none_match=request.headers.get("if-none-match")
    )


# Authorization endpoint and the pages that finish it ---------------------------------------


def rejected_page(request: Request, error: flow.RequestRejected, locale: str | None) -> Response:
    """Our page for a request that may not be redirected (RFC 6749 §4.1.2.1)."""
    return render(
        request,
        "oauth/request_error.html",
        {
            "title": N_("This sign-in request cannot be accepted"),
            "detail": error.description,
        },
        status_code=400,
        locale=locale,
    )


def _in_transaction(
    request: Request, work: Callable[[Session, Runtime], Response], *, locale: str | None = None
) -> Response:
    runtime = _runtime(request)
    try:
        with runtime.db.transaction() as db:
            return work(db, runtime)
    except flow.RequestRejected as error:
        return rejected_page(request, error, locale)


async def authorization(request: Request) -> Response:
    source = await read_input(request)
    ui_locales = next((v for k, v in source.items if k == "ui_locales"), None)

    def work(db: Session, runtime: Runtime) -> Response:
        pending = flow.validate(ProtocolServer(runtime, db), source)
        if isinstance(pending, Response):
            return pending
        return flow.decide(db, runtime, request, pending)

    locale = negotiate(request, ui_locales)
    return await run_in_threadpool(_in_transaction, request, work, locale=locale)


async def authorization_resume(request: Request) -> Response:
    interaction_id = request.path_params["interaction_id"]

    def work(db: Session, runtime: Runtime) -> Response:
        found = flow.resume(db, runtime, request, interaction_id)
        if isinstance(found, Response):
            return found
        pending, interaction = found
        return flow.decide(db, runtime, request, pending, interaction)

    return await run_in_threadpool(_in_transaction, request, work)


async def authorization_cancel(request: Request) -> Response:
    interaction_id = request.path_params["interaction_id"]

    def work(db: Session, runtime: Runtime) -> Response:
        found = flow.resume(db, runtime, request, interaction_id)
        if isinstance(found, Response):
            return found
        pending, interaction = found
        return flow.cancel(db, pending, interaction)

    return await run_in_threadpool(_in_transaction, request, work)


async def consent(request: Request) -> Response:
    interaction_id = request.path_params["interaction_id"]
    form = await request.form() if request.method == "POST" else None
    if form is not None:
        verify_csrf(request, form)
    decision = form.get("decision") if form is not None else None

    def work(db: Session, runtime: Runtime) -> Response:
        found = flow.resume(db, runtime, request, interaction_id)
        if isinstance(found, Response):
            return found
        pending, interaction = found
        if decision in ("allow", "deny"):
            return flow.consent_answer(
                db, runtime, request, pending, interaction, allow=decision == "allow"
            )
        sso_problem = flow.session_problem(
            sessions.current_session(db, request, runtime.settings),
            pending.params,
            interaction,
        )
        if sso_problem is not None:
            login: Response = interactions.redirect_to_login(interaction, runtime.settings)
            return login
        client = pending.request.client.row
        scopes = [s for s in pending.scope.split() if s in SCOPE_LABELS]
        return render(
            request,
            "oauth/consent.html",
            {
                "title": N_("Share your information"),
                "service_name": client.name,
                "legal_basis": client.legal_basis,
                "claims": [CLAIM_LABELS[c] for c in pending.claims if c in CLAIM_LABELS],
                "scopes": [SCOPE_LABELS[s] for s in scopes],
                "action": f"/consent/{interaction.id}",
                "cancel_url": interactions.cancel_url(interaction),
            },
            locale=negotiate(request, interaction.ui_locales),
        )

    return await run_in_threadpool(_in_transaction, request, work)


# Token, userinfo, introspection, revocation ------------------------------------------------


def _json_error(status: int, error: str, description: str) -> Response:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _duplicated(source: HttpInput) -> str | None:
    seen: set[str] = set()
    for name, _value in source.items:
        if name in seen:
            return name
        seen.add(name)
    return None


async def _server_call(
    request: Request,
    call: Callable[[ProtocolServer, HttpInput], Any],
    *,
    grouped: Callable[[HttpInput], bool] = lambda _source: False,
) -> Any:
    """Run `call` in one transaction. When `grouped(source)`, the rows that `insert_now` is given
    (grants, tokens, events) are left to the process's group commit, and the answer waits until
    they are committed with other requests' rows (`idp.db.group_commit`); whatever else the
    request writes (a client assertion's `jti`) commits in its own transaction first."""
    source = await read_input(request)
    if not source.form_ok:
        return _json_error(400, "invalid_request", "The body must be a well-formed form.")
    repeated = _duplicated(source)
    if repeated:
        return _json_error(400, "invalid_request", f"The parameter {repeated} is repeated.")
    runtime = _runtime(request)
    # Keys at a jwks_uri are fetched here, in the event loop: never by a request thread, never
    # inside the transaction.
    client_keys = await assertion_keys.fetch_for(runtime, source)

    group = runtime.group_commit.enabled and grouped(source)

    def work(db: Session) -> tuple[Any, DeferredRows | None]:
        pending = defer_rows(db) if group else None
        return call(ProtocolServer(runtime, db, client_keys=client_keys), source), pending

    response, pending = await runtime.db.run(work)
    if pending is not None:
        await runtime.group_commit.commit(pending)  # DatabaseUnavailable: 503, nothing written
    return response


def _client_credentials(source: HttpInput) -> bool:
    """Requests whose rows the group commit writes: the client-credentials grant's (a grant, its
    access token and its event, which nothing else in the request reads back)."""
    return dict(source.form).get("grant_type") == "client_credentials"


async def token(request: Request) -> Response:
    response: Response = await _server_call(
        request,
        lambda server, source: server.create_token_response(source),
        grouped=_client_credentials,
    )
    return response


async def introspection(request: Request) -> Response:
    response: Response = await _server_call(
        request, lambda server, source: server.create_endpoint_response("introspection", source)
    )
    return response


async def revocation(request: Request) -> Response:
    response: Response = await _server_call(
        request, lambda server, source: server.create_endpoint_response("revocation", source)
    )
    return response


async def userinfo(request: Request) -> Response:
    source = await read_input(request)
    presented = endpoints.bearer_token(request.headers, dict(source.form), dict(source.query))
    if presented is False:
        result = endpoints.bearer_error(400, "invalid_request", "Send the token one way only.")
    elif not presented:
        result = endpoints.bearer_error(401, None)
    else:
        runtime = _runtime(request)

        result = await runtime.db.run(lambda db: endpoints.userinfo(db, runtime, str(presented)))
    headers = dict(result.headers)
    if isinstance(result.body, dict):
        return JSONResponse(result.body, status_code=result.status, headers=headers)
    media = headers.pop("Content-Type", None)
    return Response(result.body, status_code=result.status, headers=headers, media_type=media)

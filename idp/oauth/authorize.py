"""The authorization endpoint's decisions: validate, then sign in, consent, and answer.

`/authorize` validates the request completely (Authlib's grant with our rules). Then, if the
current single sign-on session satisfies it and consent is on file (or not needed), the code
goes back at once; with `prompt=none` anything missing is an error sent back without any page;
otherwise the request waits as an interaction while the citizen signs in or consents, and
`/authorize/resume/<id>` or `/consent/<id>` finishes it. After a completed sign-in the citizen
may be asked how easy it was (`/feedback/<id>`): the request waits for that too, and the code
is made only once the question is answered or skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import AccessDeniedError, OAuth2Error
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp import events
from idp.auth import assurance, interactions, sessions
from idp.db.models import Interaction, SsoSession, User
from idp.oauth import consents
from idp.oauth.claims import consent_claims
from idp.oauth.grants import KNOWN_PARAMETERS, AuthorizationParams
from idp.oauth.server import HttpInput, ProtocolServer, stored_request
from idp.runtime import Runtime
from idp.services import feedback


@dataclass
class Pending:
    """A validated authorization request, ready to be answered."""

    server: ProtocolServer
    request: Any  # StarletteOAuth2Request with .client, .scope and .oidc set
    grant: Any

    @property
    def params(self) -> AuthorizationParams:
        params: AuthorizationParams = self.request.oidc
        return params

    @property
    def scope(self) -> str:
        return str(self.request.scope)

    @property
    def claims(self) -> list[str]:
        allowed = self.request.client.row.allowed_claims or ()
        return consent_claims(self.scope, self.params.claims, allowed=allowed)


class RequestRejected(Exception):
    """The request cannot go back to the e-service (bad client or redirect URI): our page."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def validate(server: ProtocolServer, source: HttpInput) -> Pending | Response:
    """The pending request, or the error response the e-service gets."""
    oauth_request = server.create_oauth2_request(source)
    if not source.form_ok:
        raise RequestRejected("The request is malformed (a POST body must be a form).")
    try:
        grant = server.get_consent_grant(oauth_request)
    except OAuth2Error as error:
        if error.redirect_uri:
            response: Response = server.handle_error_response(oauth_request, error)
            return response
        raise RequestRejected(error.get_error_description() or str(error.error)) from None
    return Pending(server, oauth_request, grant)


def stored_params(pending: Pending) -> dict[str, str]:
    """The request parameters an interaction keeps (unknown ones are dropped)."""
    data = pending.request.payload.data
    return {name: data[name] for name in KNOWN_PARAMETERS if name in data}


def fail(pending: Pending, error: OAuth2Error) -> Response:
    error.redirect_uri = pending.request.payload.redirect_uri
    response: Response = pending.server.handle_error_response(pending.request, error)
    return response


# Does the session satisfy the request? ------------------------------------------------------


def session_problem(
    sso: SsoSession | None, params: AuthorizationParams, interaction: Interaction | None
) -> str | None:
    """None if `sso` satisfies the request; else `login` (no session), `reauth` (the citizen
    must authenticate again) or `step_up` (a stronger factor is needed)."""
    if sso is None:
        return "login"
    fresh = interaction is not None and sso.auth_time >= interaction.created_at
    if interaction is not None and interaction.user_id not in (None, sso.user_id):
        return "reauth"
    if not fresh:
        if params.prompt & {"login", "select_account"}:
            return "reauth"
        if params.max_age is not None:
            age = datetime.now(UTC) - sso.auth_time
            if age > timedelta(seconds=params.max_age):
                return "reauth"
        if params.hint_user_id is not None and params.hint_user_id != sso.user_id:
            return "reauth"
    if not assurance.satisfies(sso.acr, params.required_acr):
        return "step_up"
    return None


def needs_consent(db: Session, pending: Pending, user_id: int, *, asked: bool) -> bool:
    client = pending.request.client.row
    if client.first_party:
        return False
    if "consent" in pending.params.prompt and not asked:
        return True
    return not consents.covers(db, user_id, client.client_id, pending.scope, pending.claims)


# The steps ----------------------------------------------------------------------------------


def start_interaction(
    db: Session, runtime: Runtime, pending: Pending, *, force_login: bool
) -> Interaction:
    params = pending.params
    return interactions.start(
        db,
        client_id=pending.request.client.client_id,
        params=stored_params(pending),
        force_login=force_login,
        required_acr=params.required_acr,
        login_hint=params.login_hint,
        ui_locales=params.ui_locales,
        settings=runtime.settings,
    )


def consent_url(interaction: Interaction) -> str:
    return f"/consent/{interaction.id}"


def to_consent(runtime: Runtime, interaction: Interaction) -> Response:
    response = RedirectResponse(
        consent_url(interaction), status_code=303, headers={"Cache-Control": "no-store"}
    )
    interactions.bind_browser(response, interaction, runtime.settings)
    return response


def issue_code(
    db: Session,
    runtime: Runtime,
    pending: Pending,
    user: User,
    sso: SsoSession,
    interaction: Interaction | None,
) -> Response:
    """The sign-in is complete: it is recorded, then perhaps our question is shown (the code
    waits for it), then the code goes back to the e-service."""
    client_id = pending.request.client.client_id
    if interaction is None or not interaction.signin.get(interactions.QUESTION):
        interactive = "none" not in pending.params.prompt
        ask = feedback.offer(
            db, runtime, client_id=client_id, user_id=user.id, interactive=interactive
        )
        if interaction is None and not ask:
            events.record(db, "signin.started", client_id=client_id)
        events.record(
            db,
            "signin.completed",
            user_id=user.id,
            client_id=client_id,
            acr=sso.acr,
            amr=sorted(sso.amr),
            sso=interaction is None or sso.auth_time < interaction.created_at,
            seconds=None
            if interaction is None
            else int((datetime.now(UTC) - interaction.created_at).total_seconds()),
            scope=pending.scope,
            claims=pending.claims,
            ua=sso.user_agent,
        )
        if ask:
            return ask_question(db, runtime, pending, user, interaction)
    if interaction is not None and not interactions.complete(db, interaction):
        raise RequestRejected("This sign-in request was already used.")
    pending.request.sso = sso
    response: Response = pending.server.create_authorization_response(
        pending.request, grant_user=user, grant=pending.grant
    )
    return response


# Our question after the sign-in --------------------------------------------------------------


def question_url(interaction: Interaction | str) -> str:
    interaction_id = interaction if isinstance(interaction, str) else interaction.id
    return f"/feedback/{interaction_id}"


def ask_question(
    db: Session, runtime: Runtime, pending: Pending, user: User, interaction: Interaction | None
) -> Response:
    """Hold the request (a sign-in answered at once by the session is stored as an interaction
    now, which counts it as started) while the citizen sees our question, for as long as the
    question can be answered; no code exists until then."""
    if interaction is None:
        interaction = start_interaction(db, runtime, pending, force_login=False)
    interaction.signin = {**(interaction.signin or {}), interactions.QUESTION: user.id}
    hold = feedback.ANSWER_WITHIN
    interaction.expires_at = max(interaction.expires_at, datetime.now(UTC) + hold)
    response = RedirectResponse(
        question_url(interaction), status_code=303, headers={"Cache-Control": "no-store"}
    )
    interactions.bind_browser(
        response, interaction, runtime.settings, max_age=int(hold.total_seconds())
    )
    return response


def question(
    db: Session, runtime: Runtime, request: Request, interaction_id: str, *, sent: bool = False
) -> tuple[Pending, Interaction] | Response:
    """The request waiting for our question, and its interaction; or, when there is nothing
    to ask any more, the response that ends it. A form `sent` again once the request was
    answered (a second tap, the back button) is answered anew, as the same request would be
    at `/authorize`, so the citizen still returns to the e-service."""
    interaction = interactions.load(db, interaction_id, request, used=sent)
    if interaction is None or not interaction.signin.get(interactions.QUESTION):
        raise RequestRejected("This sign-in request has expired or was already used.")
    pending = validate(
        ProtocolServer(runtime, db), stored_request(runtime.settings.issuer, interaction.params)
    )
    if isinstance(pending, Response):
        interactions.complete(db, interaction)
        return pending
    if interaction.completed_at is not None:
        return decide(db, runtime, request, pending)
    return pending, interaction


def decide(
    db: Session,
    runtime: Runtime,
    request: Request,
    pending: Pending,
    interaction: Interaction | None = None,
) -> Response:
    """Answer now, or send the citizen to sign in or consent.

    A request that waits for the citizen is stored as an interaction, which the indicators
    count as a sign-in started; only a request answered at once by the session records
    `signin.started` (an anonymous `/authorize` leaves no audit entry, see `idp.stats.rollup`).
    """
    params = pending.params
    sso = sessions.current_session(db, request, runtime.settings)
    problem = session_problem(sso, params, interaction)
    if problem is not None:
        if "none" in params.prompt:
            return fail(pending, LoginRequiredError())
        if interaction is None:
            interaction = start_interaction(db, runtime, pending, force_login=problem == "reauth")
        elif problem == "reauth":
            interaction.force_login = True
        return interactions.redirect_to_login(interaction, runtime.settings)
    assert sso is not None
    user = db.get(User, sso.user_id)
    assert user is not None
    if needs_consent(db, pending, user.id, asked=False):
        if "none" in params.prompt:
            return fail(pending, ConsentRequiredError())
        if interaction is None:
            interaction = start_interaction(db, runtime, pending, force_login=False)
        return to_consent(runtime, interaction)
    return issue_code(db, runtime, pending, user, sso, interaction)


def resume(
    db: Session, runtime: Runtime, request: Request, interaction_id: str
) -> tuple[Pending, Interaction] | Response:
    """The pending request of a live interaction bound to this browser."""
    interaction = interactions.load(db, interaction_id, request)
    if interaction is None:
        raise RequestRejected("This sign-in request has expired or was already used.")
    server = ProtocolServer(runtime, db)
    pending = validate(server, stored_request(runtime.settings.issuer, interaction.params))
    if isinstance(pending, Response):
        interactions.complete(db, interaction)
        return pending
    return pending, interaction


def cancel(db: Session, pending: Pending, interaction: Interaction) -> Response:
    interactions.complete(db, interaction)
    events.record(
        db,
        "signin.cancelled",
        outcome="failure",
        user_id=interaction.user_id,
        client_id=interaction.client_id,
        reason="cancelled",
    )
    return fail(pending, AccessDeniedError("The citizen cancelled the request."))


def consent_answer(
    db: Session,
    runtime: Runtime,
    request: Request,
    pending: Pending,
    interaction: Interaction,
    *,
    allow: bool,
) -> Response:
    """The citizen's answer on the consent page."""
    sso = sessions.current_session(db, request, runtime.settings)
    if session_problem(sso, pending.params, interaction) is not None:
        return interactions.redirect_to_login(interaction, runtime.settings)
    assert sso is not None
    if not allow:
        return cancel(db, pending, interaction)
    client_id = pending.request.client.client_id
    consents.grant(db, sso.user_id, client_id, pending.scope, pending.claims)
    user = db.get(User, sso.user_id)
    assert user is not None
    return issue_code(db, runtime, pending, user, sso, interaction)

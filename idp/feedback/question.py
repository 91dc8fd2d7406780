"""`/feedback/<id>`: our one question after a completed sign-in, before the citizen returns.

"How easy was it to sign in to <e-service>?" on a scale of five, an optional comment, and
"Send" or "Skip" (two buttons of one form: no script needed). Whatever the citizen does — an
answer, a skip, a question answered already or asked too long ago — the request waiting for it
(`idp.oauth.authorize.question`) is then answered and the browser goes back to the e-service;
only an answer that cannot be read shows the page again, with what to correct, and keeps
nothing. Which sign-ins are asked is decided by `idp.services.feedback.offer`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from idp.auth import interactions
from idp.auth.pages import field, locale_of, translator
from idp.csrf import verify_csrf
from idp.db.models import Interaction
from idp.i18n import N_
from idp.oauth import authorize as flow
from idp.oauth.views import rejected_page
from idp.runtime import Runtime
from idp.services import feedback
from idp.templating import render
from idp.text import storable

# The answers, from 1 to 5, as the page names them.
SCALE = (
    N_("Very difficult"),
    N_("Difficult"),
    N_("Neither easy nor difficult"),
    N_("Easy"),
    N_("Very easy"),
)
NO_SCORE = N_("Select how easy it was to sign in, or skip the question")
LONG_COMMENT = N_("Your comment must be %(count)s characters or fewer")
BAD_COMMENT = N_("Your comment contains characters that cannot be kept: remove them")


def _page(
    request: Request,
    pending: flow.Pending,
    interaction: Interaction,
    *,
    errors: list[tuple[str, str]] | None = None,
    score: str = "",
    comment: str = "",
) -> Response:
    return render(
        request,
        "signin/feedback.html",
        {
            "title": N_("How easy was it to sign in?"),
            "eservice": pending.request.client.row.name,
            "action": flow.question_url(interaction),
            "scale": list(enumerate(SCALE, start=1)),
            "score": score,
            "comment": comment,
            "max_comment": feedback.MAX_COMMENT,
            "errors": errors or [],
        },
        locale=locale_of(request, interaction),
        status_code=400 if errors else 200,
    )


def _problems(
    request: Request, interaction: Interaction, score: str, comment: str
) -> list[tuple[str, str]]:
    _ = translator(request, interaction)
    errors: list[tuple[str, str]] = []
    if score not in {str(value) for value in feedback.SCORES}:
        errors.append(("score", _(NO_SCORE)))
    if len(comment.strip()) > feedback.MAX_COMMENT:
        errors.append(("comment", _(LONG_COMMENT) % {"count": feedback.MAX_COMMENT}))
    elif not storable(comment):
        errors.append(("comment", _(BAD_COMMENT)))
    return errors


def _in_transaction(request: Request, work: Any) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        with runtime.db.transaction() as db:
            response: Response = work(db, runtime)
            return response
    except flow.RequestRejected as error:
        return rejected_page(request, error, None)


async def question_page(request: Request) -> Response:
    interaction_id = str(request.path_params["interaction_id"])

    def work(db: Session, runtime: Runtime) -> Response:
        found = flow.question(db, runtime, request, interaction_id)
        if isinstance(found, Response):
            return found
        return _page(request, *found)

    return await run_in_threadpool(_in_transaction, request, work)


async def question_submit(request: Request) -> Response:
    interaction_id = str(request.path_params["interaction_id"])
    form = await request.form()
    verify_csrf(request, form)
    skipped = form.get("choice") == "skip"
    score = field(form, "score", 8)
    comment = field(form, "comment", 4 * feedback.MAX_COMMENT)

    def work(db: Session, runtime: Runtime) -> Response:
        found = flow.question(db, runtime, request, interaction_id, sent=True)
        if isinstance(found, Response):
            return found
        pending, interaction = found
        user_id = int(interaction.signin[interactions.QUESTION])
        client_id = pending.request.client.client_id
        try:
            if skipped:
                feedback.skip(db, runtime, client_id=client_id, user_id=user_id)
            else:
                errors = _problems(request, interaction, score, comment)
                if errors:
                    return _page(
                        request, pending, interaction, errors=errors, score=score, comment=comment
                    )
                feedback.answer(
                    db,
                    runtime,
                    client_id=client_id,
                    user_id=user_id,
                    score=int(score),
                    comment=comment,
                )
        except feedback.NoOpenQuestion:
            pass  # answered in another tab, or asked too long ago: the citizen goes on all the same
        return flow.decide(db, runtime, request, pending, interaction)

    return await run_in_threadpool(_in_transaction, request, work)

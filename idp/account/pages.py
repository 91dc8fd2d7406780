"""What every account page shares: CSRF on POST, the signed-in citizen, one transaction, and
the words for assurance levels, sign-in methods and claims."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp import i18n
from idp.account.access import Citizen, require_citizen, safe_return
from idp.auth.assurance import ACR_LABELS, AMR_LABELS
from idp.csrf import verify_csrf
from idp.logout.views import CONFIRM as SIGN_OUT
from idp.oauth.claims import CLAIM_LABELS
from idp.runtime import Runtime
from idp.templating import render

MAX_FIELD = 4000


@dataclass
class Call:
    """One account request: who, and its open transaction."""

    request: Request
    db: Session
    runtime: Runtime
    citizen: Citizen
    form: FormData | None
    prepared: Any = None  # what the view's `prepare` found, with no transaction open

    def field(self, name: str, limit: int = MAX_FIELD) -> str:
        value = self.form.get(name) if self.form is not None else None
        return value[:limit] if isinstance(value, str) else ""


def translator(call: Call) -> Callable[..., str]:
    """`_()` in the page's language, for what a view says itself (error messages)."""
    return i18n.gettext_for(i18n.negotiate(call.request))


def show(call: Call, template: str, context: dict[str, Any], *, status_code: int = 200) -> Response:
    return render(
        call.request,
        template,
        {
            "citizen": call.citizen,
            "errors": [],
            "notice": None,
            "acr_labels": ACR_LABELS,
            "amr_labels": AMR_LABELS,
            "claim_labels": CLAIM_LABELS,
            "sign_out": SIGN_OUT,
            **context,
        },
        status_code=status_code,
    )


def go(location: str) -> Response:
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


Prepare = Callable[[Runtime, Request, Citizen, FormData | None], Any]


def account_view(
    view: Callable[[Call], Response],
    *,
    fresh: bool = False,
    back: str | None = None,
    prepare: Prepare | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    """An account page or action: CSRF on POST, then the citizen (or a sign-in), then `view`
    in one transaction. `back`: where to return after signing in (for POSTs). With `prepare`,
    once the citizen is known, slow work (password hashing) runs first with no transaction
    open; `view` finds its result in `call.prepared`."""

    async def endpoint(request: Request) -> Response:
        form = await request.form() if request.method == "POST" else None
        if form is not None:
            verify_csrf(request, form)
        if back is not None:
            return_to = back
        elif request.method == "GET":
            query = f"?{request.url.query}" if request.url.query else ""
            return_to = f"{request.url.path}{query}"
        else:
            return_to = request.url.path
        return await run_in_threadpool(_run, request, form, safe_return(return_to))

    def _citizen(
        runtime: Runtime, db: Session, request: Request, return_to: str
    ) -> Citizen | Response:
        return require_citizen(db, runtime, request, return_to=return_to, fresh=fresh)

    def _run(request: Request, form: FormData | None, return_to: str) -> Response:
        runtime: Runtime = request.app.state.runtime
        prepared = None
        if prepare is not None:
            with runtime.db.transaction() as db:
                citizen = _citizen(runtime, db, request, return_to)
            if not isinstance(citizen, Citizen):
                return citizen
            prepared = prepare(runtime, request, citizen, form)
        with runtime.db.transaction() as db:
            citizen = _citizen(runtime, db, request, return_to)
            if not isinstance(citizen, Citizen):
                return citizen
            return view(Call(request, db, runtime, citizen, form, prepared))

    return endpoint

"""What every admin page shares: the access check, one transaction, the frame (the console's
sections, done-messages, errors), pagination, and the confirmation of an action that cannot be
undone.

Every action of the console (a POST: registering an e-service, rotating a secret or a key,
disabling or enabling, unlocking, resetting a second factor, ending sessions, ...) yields a
credential or changes who may do what, so `admin_view` asks each for a fresh sign-in
(`SAFE_METHODS` excepted); an action added later cannot forget it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp.admin.access import HOME, Admin, require_admin, safe_return
from idp.csrf import verify_csrf
from idp.i18n import N_, gettext_for, negotiate
from idp.runtime import Runtime
from idp.services import NotFound, ServiceError
from idp.templating import render

PAGE_SIZE = 20
MAX_FIELD = 4000
SAFE_METHODS = frozenset({"GET", "HEAD"})  # read only: no fresh sign-in needed
# The console's sections, in the service navigation of every page.
SECTIONS = (
    (HOME, N_("Overview")),
    ("/admin/clients", N_("E-services")),
    ("/admin/citizens", N_("Citizens")),
    ("/admin/keys", N_("Signing keys")),
    ("/admin/audit", N_("Audit log")),
    ("/admin/indicators", N_("Indicators")),
    ("/admin/security-reports", N_("Security reports")),
)


def form_field(form: FormData | None, name: str, limit: int = MAX_FIELD) -> str:
    """A submitted text field, cut to `limit` characters and stripped ("" when absent)."""
    value = form.get(name) if form is not None else None
    return value[:limit].strip() if isinstance(value, str) else ""


def form_checked(form: FormData | None, name: str) -> bool:
    """Whether a submitted checkbox is ticked."""
    return form_field(form, name) in ("1", "on", "true", "yes")


@dataclass
class Call:
    """One admin request: who, where, and its open transaction."""

    request: Request
    db: Session
    runtime: Runtime
    admin: Admin
    form: FormData | None
    prepared: Any = None  # what the view's `prepare` made of the form, before the transaction

    def field(self, name: str, limit: int = MAX_FIELD) -> str:
        return form_field(self.form, name, limit)

    def lines(self, name: str) -> list[str]:
        """A textarea of one value per line (or separated by spaces)."""
        return [part for part in self.field(name).split() if part]

    def checked(self, name: str) -> bool:
        return form_checked(self.form, name)

    def query(self, name: str, limit: int = 200) -> str:
        return self.request.query_params.get(name, "")[:limit].strip()


View = Callable[[Call], Response]
# Makes the form into what the view writes, given the form, the runtime and the path parameters
# (e.g. the e-service a change is for).
Prepare = Callable[[FormData | None, Runtime, Mapping[str, str]], Awaitable[Any]]


def current_page(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return min(int(raw), 100000) if raw.isdigit() and int(raw) >= 1 else 1


def pagination(request: Request, total: int, page_number: int) -> dict[str, Any]:
    """Links to the previous and next pages and to the pages around this one (`items`: the
    first, the last and this one's neighbours, `None` for the gaps), keeping the other query
    parameters."""
    pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
    others = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]

    def link(number: int) -> str:
        return f"{request.url.path}?{urlencode([*others, ('page', str(number))])}"

    near = {1, pages, page_number - 1, page_number, page_number + 1}
    items: list[dict[str, Any] | None] = []
    last = 0
    for number in sorted(n for n in near if 1 <= n <= pages):
        if number - last > 1:
            items.append(None)
        items.append({"number": number, "href": link(number), "current": number == page_number})
        last = number
    return {
        "page": page_number,
        "pages": pages,
        "total": total,
        "previous": link(page_number - 1) if page_number > 1 else None,
        "next": link(page_number + 1) if page_number < pages else None,
        "items": items if pages > 1 else [],
    }


def translator(request: Request) -> Callable[..., str]:
    """`_(message, **values)` in the language of the page."""
    return gettext_for(negotiate(request))


def navigation(request: Request) -> list[dict[str, Any]]:
    """The console's sections for the service navigation, the one this page is in marked."""
    _ = translator(request)
    here = request.url.path
    items = []
    for path, text in SECTIONS:
        inside = path != HOME and here.startswith(f"{path}/")
        items.append({"text": _(text), "href": path, "current": here == path, "active": inside})
    return items


def show(call: Call, template: str, context: dict[str, Any], *, status_code: int = 200) -> Response:
    """A console page: the sections, the administrator, a done-message (`notice`, a message
    id) and the errors (`errors`: [(field id, message)], or `problem`: one message that names
    no field)."""
    problem = context.get("problem")
    values = {
        "admin": call.admin,
        "notice": None,
        "problem": None,
        "errors": [("", problem)] if problem else [],
        "navigation": navigation(call.request),
        "navigation_label": translator(call.request)(N_("Administration")),
        **context,
    }
    return render(call.request, template, values, status_code=status_code)


@dataclass(frozen=True)
class Subject:
    """What an action that cannot be undone is about: its name (shown above the question),
    the page to go back to, and the values of the warning's message."""

    name: str
    back: str
    values: Mapping[str, Any]


def confirmation(
    title: str, warning: str, button: str, about: Callable[[Call], Subject]
) -> Callable[[Request], Awaitable[Response]]:
    """The page before an action that cannot be undone, served by GET at the action's own
    address: the question (`title`), what will happen (`warning`, a message id filled with the
    subject's values), a warning-styled `button` that POSTs to this very address (its query
    included), and the way back. `about` finds the subject (or refuses: NotFound, ...). The
    page asks for a fresh sign-in, as the action will, so that the decision is not lost on the
    way; an action refused for want of one comes back here after the sign-in."""

    def page(call: Call) -> Response:
        subject = about(call)
        query = f"?{call.request.url.query}" if call.request.url.query else ""
        return show(
            call,
            "admin/confirm.html",
            {
                "title": title,
                "subject": subject.name,
                "warning": warning,
                "values": subject.values,
                "button": button,
                "action": f"{call.request.url.path}{query}",
                "cancel": subject.back,
            },
        )

    return admin_view(page, fresh=True)


def done(location: str, code: str) -> Response:
    """303 after a successful action, naming what was done (the page says it)."""
    separator = "&" if "?" in location else "?"
    return RedirectResponse(
        f"{location}{separator}done={code}", status_code=303, headers={"Cache-Control": "no-store"}
    )


def reason(call: Call, error: ServiceError) -> str:
    """Why an action was refused, in the language of the page."""
    return error.translated(translator(call.request))


def refused(call: Call, error: ServiceError) -> Response:
    """The reason an action was refused, on a page of its own."""
    return show(
        call,
        "admin/refused.html",
        {"title": N_("The action was refused"), "problem": reason(call, error)},
        status_code=404 if isinstance(error, NotFound) else 400,
    )


def admin_view(
    view: View,
    *,
    fresh: bool = False,
    back: Callable[[Request], str] | None = None,
    on_error: Callable[[Call, ServiceError], Response] | None = None,
    prepare: Prepare | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    """An admin page or action: CSRF checked on POST, then the administrator (or a sign-in, or
    403), then `view` in one transaction. A refused action (ServiceError) is shown by
    `on_error`. With `prepare`, the form is first made into what `view` writes
    (`call.prepared`) once the administrator is known, outside any transaction: work that must
    not hold the database, such as fetching a document an e-service publishes; it is given the
    form, the runtime and the path parameters, and its refusal is shown by `on_error` too.

    Every action (any method but GET and HEAD) needs an authentication at most
    `admin_reauth_seconds` old; an older one signs in again first, and nothing is done (nor
    prepared). `fresh` asks the same of a page (e.g. a form whose input would be lost on the
    way)."""

    async def endpoint(request: Request) -> Response:
        form = await request.form() if request.method == "POST" else None
        if form is not None:
            verify_csrf(request, form)
        if back is not None:
            return_to = back(request)
        else:  # a POST returns to the page of its own address: the form, or its confirmation
            query = f"?{request.url.query}" if request.url.query else ""
            return_to = f"{request.url.path}{query}"
        return_to = safe_return(return_to)
        prepared: Any = None
        if prepare is not None:
            elsewhere = await run_in_threadpool(_not_admin, request, return_to)
            if elsewhere is not None:
                return elsewhere
            path = {name: str(value) for name, value in request.path_params.items()}
            try:
                prepared = await prepare(form, request.app.state.runtime, path)
            except ServiceError as error:
                prepared = error
        return await run_in_threadpool(_run, request, form, return_to, prepared)

    def _not_admin(request: Request, return_to: str) -> Response | None:
        runtime: Runtime = request.app.state.runtime
        with runtime.db.transaction() as db:
            sensitive = fresh or request.method not in SAFE_METHODS
            admin = require_admin(db, runtime, request, return_to=return_to, fresh=sensitive)
            return None if isinstance(admin, Admin) else admin

    def _run(request: Request, form: FormData | None, return_to: str, prepared: Any) -> Response:
        runtime: Runtime = request.app.state.runtime
        with runtime.db.transaction() as db:
            sensitive = fresh or request.method not in SAFE_METHODS
            admin = require_admin(db, runtime, request, return_to=return_to, fresh=sensitive)
            if not isinstance(admin, Admin):
                return admin
            call = Call(request, db, runtime, admin, form, prepared)
            try:
                if isinstance(prepared, ServiceError):
                    raise prepared
                return view(call)
            except ServiceError as error:  # services refuse before writing anything
                return (on_error or refused)(call, error)

    return endpoint

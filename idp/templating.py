"""Pages and emails from the Jinja2 templates in `templates/`, in the citizen's language.

Every page gets: `locale`, `_()` (translate, with `%(name)s` values), `_n()` (translate a
message with a number: singular, plural, the number, values), `csrf_field()`,
`languages` (for the language switch), `lang_url(code)`, `static(path)`, `time_zone` and
`signed_in` (the browser sends a session cookie: the header links to the account); the
filters `datetime` and `date` (`idp/datetimes.py`); `error_for(errors, field)` and
`error_list(errors)`, which turn a page's `errors` ([(field id, message)]) into what GOV.UK's
form macros and error summary take. The layout and its blocks: `templates/base.html`.

Pages are built from GOV.UK Frontend's components through the Jinja port of its macros
(`govuk-frontend-jinja`), imported as in its documentation:
`{% from "govuk_frontend_jinja/components/button/macro.html" import govukButton %}`.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    PrefixLoader,
    StrictUndefined,
    Template,
    Undefined,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import Receive, Scope, Send

from idp import csrf, datetimes, i18n
from idp.auth.sessions import has_cookie

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = TEMPLATES_DIR / "static"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600
GOVUK = "govuk_frontend_jinja"  # the prefix of GOV.UK Frontend's macros
ERROR = i18n.N_("Error")  # what a screen reader says before a field's error message


class PageEnvironment(Environment):
    """Our templates under `StrictUndefined` (a misspelt or missing value is an error, never
    an empty string); GOV.UK Frontend's macros under Jinja's ordinary `Undefined`.

    The macros are a port of Nunjucks templates, where a missing parameter is simply
    undefined: they test options a page leaves out (`params.hint`, `params.attributes`) and
    name `undefined` itself. Under `StrictUndefined` every such test raises. So a template
    under the `govuk_frontend_jinja/` prefix is loaded by an overlay of this environment that
    differs only in its `undefined` (same loader, filters, globals and autoescaping, its own
    cache), and whatever it imports stays there. A macro keeps the environment it was
    compiled in, so calling one from a page changes nothing for the page itself.
    """

    components: Environment | None = None

    def get_template(
        self,
        name: str | Template,
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,
    ) -> Template:
        if self.components is not None and isinstance(name, str) and name.startswith(GOVUK):
            return self.components.get_template(name, parent, globals)
        return super().get_template(name, parent, globals)


@pass_context
def error_for(context: Context, errors: list[tuple[str, str]], field: str) -> dict[str, str] | None:
    """The error message of `field` for a GOV.UK form macro's `errorMessage` (None: none),
    with the "Error:" a screen reader says first in the page's language."""
    for name, message in errors:
        if name == field:
            return {"text": message, "visuallyHiddenText": context["_"](ERROR)}
    return None


def error_list(errors: list[tuple[str, str]]) -> list[dict[str, str]]:
    """The `errorList` of the error summary: each message, linked to its field (a message
    whose field id is "" names no field, and links nowhere)."""
    return [
        {"text": message, "href": f"#{name}"} if name else {"text": message}
        for name, message in errors
    ]


@pass_context
def _datetime_filter(context: Context, value: Any, width: datetimes.Width = "medium") -> str:
    return datetimes.format_datetime(value, context["locale"], context["time_zone"], width)


@pass_context
def _date_filter(context: Context, value: Any, width: datetimes.Width = "medium") -> str:
    return datetimes.format_date(value, context["locale"], context["time_zone"], width)


@cache
def environment() -> Environment:
    env = PageEnvironment(
        loader=ChoiceLoader(
            [
                FileSystemLoader(TEMPLATES_DIR),
                PrefixLoader({GOVUK: PackageLoader(GOVUK)}),
            ]
        ),
        autoescape=select_autoescape(("html", "xml", "svg"), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["datetime"] = _datetime_filter
    env.filters["date"] = _date_filter
    env.globals["error_for"] = error_for
    env.globals["error_list"] = error_list
    # As the port is written and tested: ordinary `Undefined`, blocks not trimmed.
    env.components = env.overlay(undefined=Undefined, trim_blocks=False, lstrip_blocks=False)
    return env


def lang_url(request: Request, locale: str) -> str:
    """This page's address in another language (GET pages only; POSTs answer with 303)."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != i18n.LANG_PARAM]
    query.append((i18n.LANG_PARAM, locale))
    return f"{request.url.path}?{urlencode(query)}"


def time_zone(request: Request) -> ZoneInfo:
    zone: ZoneInfo = request.app.state.runtime.settings.zone
    return zone


def signed_in(request: Request) -> bool:
    """Whether to offer the link to the account: a session cookie is present. Decided from
    the cookie alone, on every page, with no database query."""
    return has_cookie(request, request.app.state.runtime.settings)


def page_context(request: Request, locale: str) -> dict[str, Any]:
    return {
        "request": request,
        "locale": locale,
        "_": i18n.gettext_for(locale),
        "_n": i18n.ngettext_for(locale),
        "csrf_field": lambda: csrf.csrf_field(request),
        "languages": [(code, i18n.LANGUAGE_NAMES[code]) for code in i18n.LOCALES],
        "lang_url": lambda code: lang_url(request, code),
        "static": lambda path: f"/static/{path}",
        "time_zone": time_zone(request),
        "signed_in": signed_in(request),
    }


class PageResponse(HTMLResponse):
    """A page whose HTML is made as it is sent, once the view has returned: a view answers
    from inside its database transaction, and rendering (a fraction of a millisecond, but
    per page) then never holds the transaction, nor SQLite's one write lock, open."""

    def __init__(
        self,
        request: Request,
        template_name: str,
        values: dict[str, Any],
        *,
        status_code: int,
        headers: dict[str, str],
    ) -> None:
        self.request = request
        self.template_name = template_name
        self.values = values
        self.status_code = status_code
        self.background = None
        self.body: bytes | None = None  # type: ignore[assignment]
        self.init_headers(headers)  # no body yet: its length is added when it is made

    def rendered(self) -> bytes:
        if self.body is None:
            html = environment().get_template(self.template_name).render(self.values)
            self.body = html.encode(self.charset)
            self.raw_headers.append((b"content-length", str(len(self.body)).encode()))
            csrf.set_csrf_cookie(self.request, self)  # once a form on the page made a token
        return self.body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.rendered()
        await super().__call__(scope, receive, send)


def render(
    request: Request,
    template_name: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    locale: str | None = None,
) -> PageResponse:
    """A page in `locale` (default: negotiated from the request), never cached."""
    locale = locale or i18n.negotiate(request)
    values = {"title": None, **page_context(request, locale), **context}
    response = PageResponse(
        request,
        template_name,
        values,
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )
    chosen = i18n.explicit_choice(request)
    if chosen and request.cookies.get(i18n.LANG_COOKIE) != chosen:
        response.set_cookie(
            i18n.LANG_COOKIE,
            chosen,
            max_age=LANG_COOKIE_MAX_AGE,
            path="/",
            secure=request.app.state.runtime.settings.issuer.startswith("https://"),
            httponly=True,
            samesite="lax",
        )
    return response


def render_text(template_name: str, context: dict[str, Any], *, locale: str, zone: ZoneInfo) -> str:
    """An email body or other text in `locale` (autoescaping off for `.txt`); times in `zone`."""
    values = {
        "locale": locale,
        "_": i18n.gettext_for(locale),
        "_n": i18n.ngettext_for(locale),
        "time_zone": zone,
        **context,
    }
    return environment().get_template(template_name).render(values)

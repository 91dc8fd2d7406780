"""Pages and emails from the Jinja2 templates in `templates/`, in the citizen's language.

Every page gets: `locale`, `_()` (translate, with `%(name)s` values), `_n()` (translate a
message with a number: singular, plural, the number, values), `csrf_field()`,
`languages` (for the language switch), `lang_url(code)` and `static(path)`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import Receive, Scope, Send

from idp import csrf, i18n

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = TEMPLATES_DIR / "static"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600


@cache
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(("html", "xml", "svg"), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def lang_url(request: Request, locale: str) -> str:
    """This page's address in another language (GET pages only; POSTs answer with 303)."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != i18n.LANG_PARAM]
    query.append((i18n.LANG_PARAM, locale))
    return f"{request.url.path}?{urlencode(query)}"


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


def render_text(template_name: str, context: dict[str, Any], *, locale: str) -> str:
    """An email body or other text in `locale` (autoescaping off for `.txt`)."""
    values = {
        "locale": locale,
        "_": i18n.gettext_for(locale),
        "_n": i18n.ngettext_for(locale),
        **context,
    }
    return environment().get_template(template_name).render(values)

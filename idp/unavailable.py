"""What a citizen and an e-service see while the database cannot answer in time.

An e-service (JSON, or anything that does not ask for HTML) gets the OAuth error
`temporarily_unavailable` with status 503. A browser gets a page in the citizen's language that
says to try again, with a link back to the page it was on: the failed step wrote nothing, and
everything before it (the sign-in in progress, the session) is kept, so the citizen resumes where
they were. Both carry `Retry-After`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from idp.i18n import N_
from idp.logging import get_logger
from idp.templating import render

log = get_logger("idp.unavailable")

RETRY_AFTER_SECONDS = 5


def wants_page(request: Request) -> bool:
    """Browsers ask for HTML when they navigate; e-services and scripts do not."""
    return "text/html" in request.headers.get("accept", "")


def page_to_retry(request: Request) -> str | None:
    """Where the citizen tries again: this page, or for a form the page it came from (the same
    path, if it can be shown with GET)."""
    path = request.url.path
    if request.method in ("GET", "HEAD"):
        return path + (f"?{request.url.query}" if request.url.query else "")
    scope = {"type": "http", "path": path, "root_path": "", "method": "GET"}
    for route in request.app.routes:
        match, _child = route.matches(scope)
        if match is Match.FULL:
            return path
    return None


async def database_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable")  # the request's line, with its id, says where
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"}
    if not wants_page(request):
        return JSONResponse(
            {"error": "temporarily_unavailable", "error_description": "Please try again shortly."},
            status_code=503,
            headers=headers,
        )
    response = render(
        request,
        "error.html",
        {
            "title": N_("Try again in a moment"),
            "message": N_(
                "The service could not answer in time. Wait a few seconds and try again: what "
                "you have done so far is kept."
            ),
            "link": page_to_retry(request),
            "link_text": N_("Try again"),
        },
        status_code=503,
    )
    response.headers.update(headers)
    return response

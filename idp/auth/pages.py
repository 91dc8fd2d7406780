"""What every sign-in page shares: loading the interaction, the page frame, errors, redirects."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from idp import i18n
from idp.auth import flow, interactions
from idp.db.models import Interaction
from idp.i18n import N_
from idp.runtime import Runtime
from idp.templating import render

MAX_FIELD = 1024


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def field(form: Any, name: str, limit: int = MAX_FIELD) -> str:
    """A text field of a submitted form, bounded in length (absent or a file: empty)."""
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def locale_of(request: Request, interaction: Interaction | None) -> str:
    return i18n.negotiate(request, interaction.ui_locales if interaction else None)


def translator(request: Request, interaction: Interaction | None) -> Callable[..., str]:
    return i18n.gettext_for(locale_of(request, interaction))


def frame(db: Session, interaction: Interaction, request: Request) -> dict[str, Any]:
    """The e-service's name and the way back to it, on every step."""
    name = flow.client_name(db, interaction)
    if interaction.client_id in interactions.INTERNAL_PREFIXES:
        name = translator(request, interaction)(name)  # our own pages have translated names
    return {
        "service_name": name,
        "cancel_url": interactions.cancel_url(interaction),
    }


def page(
    request: Request,
    db: Session,
    interaction: Interaction,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        template,
        {"errors": [], **frame(db, interaction, request), **context},
        locale=locale_of(request, interaction),
        status_code=status_code,
    )


def expired(request: Request) -> Response:
    """The interaction is unknown, used, expired or belongs to another browser."""
    return render(
        request,
        "error.html",
        {
            "title": N_("This sign-in page has expired"),
            "message": N_(
                "Go back to the e-service you came from and start signing in again. "
                "For your security, sign-in pages work only for a limited time and only "
                "in the browser where you started."
            ),
        },
        status_code=400,
    )


def with_error(location: str, code: str, **extra: str | int) -> Response:
    """303 back to a form, naming what went wrong (the page shows it in the citizen's
    language); never the submitted values."""
    query = "&".join(f"{key}={value}" for key, value in {"error": code, **extra}.items())
    return flow.go(f"{location}?{query}")


def error_code(request: Request, known: Mapping[str, object]) -> str | None:
    code = request.query_params.get("error")
    return code if code in known else None


def wait_seconds(request: Request) -> int:
    raw = request.query_params.get("wait", "")
    return int(raw) if raw.isdigit() and len(raw) < 6 else 0

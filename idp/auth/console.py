"""How the consoles of the service (the admin console, the account pages) sign people in.

A console has no sign-in of its own: it starts an interaction whose client is the console itself
(an internal client id such as `interactions.ADMIN_CONSOLE` or `interactions.ACCOUNT`) and sends
the browser to the sign-in pages citizens use. They resume at `<home>/resume/<id>`, which checks
the new session and returns to the page asked for, always inside the console. Who may use a
console, and how recent an authentication must be, stay with each console.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp import i18n
from idp.auth import interactions, sessions
from idp.db.models import Interaction, SsoSession
from idp.i18n import N_
from idp.runtime import Runtime
from idp.templating import render


def is_fresh(sso: SsoSession, max_age_seconds: int, now: datetime | None = None) -> bool:
    """Whether the session's authentication is at most `max_age_seconds` old."""
    now = now or datetime.now(UTC)
    return now - sso.auth_time <= timedelta(seconds=max_age_seconds)


@dataclass(frozen=True)
class Console:
    """A console signed in to through the internal client `client_id`."""

    client_id: str
    home: str
    required_acr: str | None
    cancelled_message: str

    def safe_return(self, path: str | None) -> str:
        """Only a path inside the console (never another site: `//host`, `/\\host`)."""
        inside = self.home.rstrip("/") + "/"
        if (
            not path
            or not (path == self.home or path.startswith(inside))
            or "//" in path
            or "\\" in path
            or any(ord(ch) < 33 for ch in path)
            or len(path) > 1000
        ):
            return self.home
        return path

    def sign_in(
        self, db: Session, runtime: Runtime, request: Request, *, return_to: str, force_login: bool
    ) -> Response:
        """Send the browser to the sign-in pages, to come back to `return_to`."""
        interaction = interactions.start(
            db,
            client_id=self.client_id,
            params={"return_to": self.safe_return(return_to)},
            force_login=force_login,
            required_acr=self.required_acr,
            login_hint=None,
            ui_locales=i18n.negotiate(request),
            settings=runtime.settings,
        )
        return interactions.redirect_to_login(interaction, runtime.settings)

    def interaction(self, db: Session, request: Request) -> Interaction | None:
        """The console's own interaction named in the URL, if it is one."""
        interaction = interactions.load(db, str(request.path_params["interaction_id"]), request)
        if interaction is None or interaction.client_id != self.client_id:
            return None
        return interaction

    def resume(
        self,
        db: Session,
        runtime: Runtime,
        request: Request,
        *,
        refuse: Callable[[SsoSession], Response | None] | None = None,
    ) -> Response:
        """Back from the sign-in pages: to the page asked for, if the session now allows it.

        `refuse` answers instead (e.g. 403) when the signed-in person may not use the console.
        """
        interaction = self.interaction(db, request)
        if interaction is None:
            return RedirectResponse(self.home, status_code=303)
        return_to = self.safe_return(str(interaction.params.get("return_to") or self.home))
        sso = sessions.current_session(db, request, runtime.settings)
        if (
            sso is None
            or sso.user_id != interaction.user_id
            or (interaction.force_login and sso.auth_time < interaction.created_at)
        ):
            return interactions.redirect_to_login(interaction, runtime.settings)
        interactions.complete(db, interaction)
        refused = refuse(sso) if refuse is not None else None
        if refused is not None:
            return refused
        return RedirectResponse(return_to, status_code=303, headers={"Cache-Control": "no-store"})

    def cancel(self, db: Session, request: Request) -> Response:
        interaction = self.interaction(db, request)
        if interaction is not None:
            interactions.complete(db, interaction)
        return render(
            request,
            "error.html",
            {
                "title": N_("Sign-in cancelled"),
                "message": self.cancelled_message,
                "link": self.home,
                "link_text": N_("Sign in"),
            },
        )

"""e-licensing: apply for and renew licences. Authenticates with `client_secret_basic`.

Run: `ELICENSING_CLIENT_SECRET=... uvicorn --factory clients.elicensing.app:create_app --port 8001
--no-access-log` (clients/README.md, "Running one example e-service alone").
"""

from __future__ import annotations

from starlette.applications import Starlette

from clients.common.app import ClientAuth, Look, create_rp_app
from clients.common.settings import RPSettings

LOOK = Look(
    tagline="Licences and permits, online",
    theme="theme-elicensing",
    about="Apply for a licence, renew a permit and follow your applications. "
    "Sign in with your national digital identity to continue.",
)


def create_app() -> Starlette:
    settings = RPSettings.from_env(
        "ELICENSING_", slug="e-licensing", name="e-licensing", default_port=8001, needs_secret=True
    )
    return create_rp_app(
        settings, LOOK, ClientAuth(method="client_secret_basic", secret=settings.client_secret)
    )

"""e-justice: court cases and documents. A confidential client with `private_key_jwt`: its key
pair is made at first start in its data folder, and its public key is served at `/jwks.json`.

Run: `uvicorn --factory clients.ejustice.app:create_app --port 8002 --no-access-log`
(clients/README.md, "Running one example e-service alone").
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from clients.common.app import ClientAuth, Look, create_rp_app
from clients.common.keys import ShortLivedPrivateKeyJWT, load_or_create_key, public_jwks
from clients.common.settings import RPSettings

LOOK = Look(
    tagline="Courts and legal documents, online",
    theme="theme-ejustice",
    about="Follow your court cases, file documents and receive decisions. "
    "Sign in with your national digital identity to continue.",
)


def create_app() -> Starlette:
    settings = RPSettings.from_env(
        "EJUSTICE_", slug="e-justice", name="e-justice", default_port=8002, needs_secret=False
    )
    key = load_or_create_key(settings.data_dir / "client-key.json")
    jwks = public_jwks(key)

    async def jwks_document(request: Request) -> JSONResponse:
        return JSONResponse(
            jwks, media_type="application/jwk-set+json", headers={"Cache-Control": "max-age=300"}
        )

    return create_rp_app(
        settings,
        LOOK,
        ClientAuth(
            method="private_key_jwt",
            secret=key,
            extra_methods=[ShortLivedPrivateKeyJWT(key)],
            routes=[Route("/jwks.json", jwks_document, methods=["GET"])],
        ),
    )

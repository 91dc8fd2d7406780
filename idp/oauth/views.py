"""HTTP views of the protocol: thin, they parse, call and render."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from idp.oauth.discovery import provider_metadata
from idp.runtime import Runtime


def _public_cache(runtime: Runtime) -> dict[str, str]:
    return {
        "Cache-Control": f"public, max-age={runtime.settings.jwks_max_age}",
        "Access-Control-Allow-Origin": "*",
    }


async def openid_configuration(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    runtime.keyring.refresh()
    return JSONResponse(
        provider_metadata(runtime.settings, runtime.keyring), headers=_public_cache(runtime)
    )


async def jwks(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    runtime.keyring.refresh()
    return JSONResponse(
        runtime.keyring.jwks(),
        headers=_public_cache(runtime),
        media_type="application/jwk-set+json",
    )

"""The keys a `private_key_jwt` request is verified with, when the e-service publishes them at
a `jwks_uri`: fetched here, in the event loop, before the request takes a thread and a
database transaction, so that a slow or dead host holds neither (`idp.oauth.client_jwks`
bounds and shares the fetches).

Nothing is fetched for an assertion of the wrong shape (`claimed_assertion`), nor for one that
names no enabled e-service authenticating this way with a `jwks_uri`: the authentication in
the thread then refuses the request as it would have anyway.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidClientError
from starlette.concurrency import run_in_threadpool

from idp.oauth import client_cache
from idp.oauth.client_auth import FetchedKeys, audiences, claimed_assertion
from idp.oauth.fetch import FetchError
from idp.oauth.server import HttpInput, InputPayload
from idp.runtime import Runtime


def _jwks_uri(runtime: Runtime, client_id: str) -> str | None:
    """The `jwks_uri` whose keys verify `client_id`'s assertions, if any."""
    if not client_id or len(client_id) > 128:
        return None
    cache = client_cache.for_engine(runtime.db.engine, runtime.settings.client_cache_seconds)
    with runtime.db.read() as db:
        row = cache.get(db, client_id)
    if row is None or row.disabled or row.token_endpoint_auth_method != "private_key_jwt":
        return None
    return None if row.jwks else row.jwks_uri


async def fetch_for(runtime: Runtime, source: HttpInput) -> FetchedKeys | None:
    """The key set of the e-service a client assertion in `source` names, when it has to be
    fetched from a `jwks_uri` (None otherwise)."""
    form = InputPayload(source.form).data
    try:
        claimed = claimed_assertion(form, audiences(runtime.settings.issuer))
    except InvalidClientError:
        return None
    if claimed is None:
        return None
    url = await run_in_threadpool(_jwks_uri, runtime, claimed.client_id)
    if url is None:
        return None
    try:
        document = await runtime.client_jwks.get(url, runtime.settings, kid=claimed.kid)
    except FetchError:
        return FetchedKeys(url, None)
    return FetchedKeys(url, document)

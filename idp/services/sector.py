"""The check of a `sector_identifier_uri` (OIDC Core §8.1, OIDC Dynamic Registration §5).

An e-service that names a sector identifier URI publishes there a JSON array of redirect URIs;
the provider fetches it when the e-service is registered, and again whenever its redirect URIs
or that URI change, and refuses the registration unless every registered redirect URI is in
the array. The host of the URI is then the sector of the e-service's pairwise subjects. The
fetch is made before the transaction that writes the e-service, so a slow host holds no lock.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from idp.config import Settings
from idp.i18n import N_
from idp.oauth.fetch import FetchError, fetch_json
from idp.services.errors import InvalidInput

MAX_URIS = 1000


async def check_sector_identifier(
    uri: str, redirect_uris: list[str], settings: Settings | None
) -> None:
    """Fetch `uri` (https only; plain http only where private addresses may be fetched, i.e.
    in development) and raise InvalidInput unless it lists every one of `redirect_uris`.
    Never called inside a transaction (`idp.services.clients.check_client`)."""
    if settings is None:
        raise InvalidInput(
            N_("sector identifier URI '%(uri)s' cannot be checked without the settings"), uri=uri
        )
    if urlsplit(uri).scheme.lower() != "https" and not settings.client_fetch_private_addresses:
        raise InvalidInput(N_("sector identifier URI must use https: '%(uri)s'"), uri=uri)
    try:
        document = await fetch_json(uri, settings)
    except FetchError as exc:
        raise InvalidInput(
            N_("sector identifier URI could not be fetched: %(problem)s"), problem=exc
        ) from None
    if (
        not isinstance(document, list)
        or len(document) > MAX_URIS
        or not all(isinstance(item, str) for item in document)
    ):
        raise InvalidInput(
            N_("sector identifier URI '%(uri)s' is not a JSON array of URIs"), uri=uri
        )
    listed = set(document)
    for redirect_uri in redirect_uris:
        if redirect_uri not in listed:
            raise InvalidInput(
                N_("sector identifier URI '%(uri)s' does not list redirect URI '%(redirect_uri)s'"),
                uri=uri,
                redirect_uri=redirect_uri,
            )

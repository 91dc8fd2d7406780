"""Authorization responses: back to the e-service by query string or by an auto-submitted form
(OAuth 2.0 Form Post Response Mode), always with `state` and `iss` (RFC 9207, errors too)."""

from __future__ import annotations

import html
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth2.rfc6749 import OAuth2Error
from starlette.responses import Response

from idp.config import Settings

RESPONSE_MODES = ("query", "form_post")


def response_mode_of(request: Any) -> str:
    mode = request.payload.data.get("response_mode")
    return mode if mode in RESPONSE_MODES else "query"


def add_query(uri: str, params: list[tuple[str, str]]) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + params
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


Parts = tuple[int, str, list[tuple[str, str]]]


def authorization_response(
    redirect_uri: str, params: list[tuple[str, str]], response_mode: str
) -> Parts:
    """`(status, body, headers)` of the answer to the e-service, as Authlib passes them on."""
    if response_mode == "form_post":
        return form_post(redirect_uri, params)
    return 303, "", [("Location", add_query(redirect_uri, params)), ("Cache-Control", "no-store")]


def to_response(parts: Parts) -> Response:
    status, body, headers = parts
    header_map = dict(headers)
    media = header_map.pop("Content-Type", None)
    return Response(body, status_code=status, headers=header_map, media_type=media)


def form_post(action: str, params: list[tuple[str, str]]) -> Parts:
    """An HTML page that posts `params` to `action` at once (a button if scripts are off)."""
    nonce = secrets.token_urlsafe(16)
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in params
    )
    body = (
        "<!doctype html><html><head><meta charset=utf-8><title>Submit</title></head><body>"
        f'<form method="post" action="{html.escape(action)}">{inputs}'
        '<noscript><button type="submit">Continue</button></noscript></form>'
        f'<script nonce="{nonce}">document.forms[0].submit()</script></body></html>'
    )
    origin = urlsplit(action)
    target = f"{origin.scheme}://{origin.netloc}" if origin.netloc else "'none'"
    csp = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; form-action {target}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return (
        200,
        body,
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Cache-Control", "no-store"),
            ("Content-Security-Policy", csp),
        ],
    )


def authorization_error(settings: Settings, request: Any, error: OAuth2Error) -> Parts:
    params = [("error", str(error.error))]
    description = error.get_error_description()
    if description:
        params.append(("error_description", description))
    state = request.payload.data.get("state")
    if state:
        params.append(("state", state))
    params.append(("iss", settings.issuer))
    return authorization_response(error.redirect_uri, params, response_mode_of(request))

"""An RP-initiated logout request (OpenID Connect RP-Initiated Logout 1.0 §2-§4), checked.

`id_token_hint` must be an ID token we signed (our issuer; an expired one is fine: logging out
is when old tokens turn up). `client_id`, when given with a hint, must be one of its audiences.
`post_logout_redirect_uri` is honoured only when it is exactly one registered for that
e-service; if anything fails the checks there is no redirect at all (§4), and the citizen ends
on our own page.

A `client_id` alone names an e-service but proves nothing: anyone can write a link with it (and
dynamic registration lets anyone register an address). So the redirect is followed only for an
e-service proven by a valid `id_token_hint`, or after the citizen confirmed the logout on our
page, which names the e-service (§2 recommends the hint with a redirect, §6 the confirmation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.db.models import Client, SsoSession
from idp.oauth.claims import user_for_subject
from idp.oauth.keys import SUPPORTED_ALGS, KeyRing

PARAMETERS = (
    "id_token_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
    "ui_locales",
    "logout_hint",
)
LIMITS = {
    "id_token_hint": 8192,
    "client_id": 128,
    "post_logout_redirect_uri": 2000,
    "state": 2048,
    "ui_locales": 64,
    "logout_hint": 320,
}


@dataclass
class LogoutRequest:
    """What the request proved: the e-service it comes from, where to go back, whom it names."""

    client: Client | None = None
    hint: dict[str, Any] | None = None
    redirect_uri: str | None = None
    state: str | None = None
    ui_locales: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def client_id(self) -> str | None:
        return self.client.client_id if self.client is not None else None

    @property
    def service_name(self) -> str | None:
        return self.client.name if self.client is not None else None

    @property
    def proven(self) -> bool:
        """The e-service is shown by an ID token we issued to it, not only named."""
        return self.hint is not None and self.client is not None

    def redirect_target(self, *, confirmed: bool) -> str | None:
        """The post-logout redirect with `state` added, if the request earned one: its checks
        passed, and the e-service is `proven` or the citizen `confirmed` on our page."""
        if self.redirect_uri is None or not (self.proven or confirmed):
            return None
        if not self.state:
            return self.redirect_uri
        parts = urlsplit(self.redirect_uri)
        extra = urlencode({"state": self.state})
        query = f"{parts.query}&{extra}" if parts.query else extra
        return urlunsplit(parts._replace(query=query))

    def names_session(self, db: Session, sso: SsoSession) -> bool:
        """True when the hint was issued under this very session (its `sid`), or, for a
        hint without `sid`, to the citizen of this session."""
        if self.hint is None:
            return False
        sid = self.hint.get("sid")
        if sid is not None:
            return bool(sid == sso.sid)
        if self.client is None:
            return False
        user = user_for_subject(db, str(self.hint["sub"]), self.client)
        return user is not None and user.id == sso.user_id


def decode_hint(keyring: KeyRing, issuer: str, hint: str) -> dict[str, Any] | None:
    """The claims of an ID token we issued, expired or not; None if it is not one."""
    try:
        keys = KeySet.import_key_set(keyring.jwks())  # type: ignore[arg-type]
        token = jwt.decode(hint, keys, algorithms=list(SUPPORTED_ALGS))
    except (JoseError, ValueError, TypeError):
        return None
    claims = dict(token.claims)
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if claims.get("iss") != issuer or not isinstance(claims.get("sub"), str):
        return None
    if not audiences or not all(isinstance(a, str) and a for a in audiences):
        return None
    if "sid" in claims and not isinstance(claims["sid"], str):
        return None
    return claims


def _audiences(claims: dict[str, Any]) -> list[str]:
    audience = claims["aud"]
    return list(audience) if isinstance(audience, list) else [audience]


def parse(
    db: Session, keyring: KeyRing, issuer: str, items: list[tuple[str, str]]
) -> LogoutRequest:
    """Check a logout request; never raises (a bad request just earns no redirect)."""
    request = LogoutRequest()
    values: dict[str, str] = {}
    for name, value in items:
        if name not in PARAMETERS:
            continue
        if name in values:
            request.problems.append(f"{name} is repeated")
            continue
        if len(value) > LIMITS[name]:
            request.problems.append(f"{name} is too long")
            continue
        values[name] = value
    request.ui_locales = values.get("ui_locales") or None
    request.state = values.get("state") or None

    client_id = values.get("client_id") or None
    hint_text = values.get("id_token_hint")
    if hint_text:
        keyring.refresh()
        request.hint = decode_hint(keyring, issuer, hint_text)
        if request.hint is None:
            request.problems.append("id_token_hint is not an ID token of this provider")
        else:
            audiences = _audiences(request.hint)
            if client_id is None:
                azp = request.hint.get("azp")
                if isinstance(azp, str) and azp in audiences:
                    client_id = azp
                elif len(audiences) == 1:
                    client_id = audiences[0]
            elif client_id not in audiences:
                request.problems.append("client_id is not an audience of id_token_hint")
                request.hint = None
    if client_id is not None:
        client = db.scalar(select(Client).where(Client.client_id == client_id))
        if client is None or client.disabled:
            request.problems.append("client_id is unknown or disabled")
        else:
            request.client = client
    uri = values.get("post_logout_redirect_uri")
    if uri:
        if request.client is None:
            request.problems.append("post_logout_redirect_uri without a known e-service")
        elif uri not in (request.client.post_logout_redirect_uris or []):
            request.problems.append("post_logout_redirect_uri is not registered")
        else:
            request.redirect_uri = uri
    if request.problems:
        request.redirect_uri = None  # §4: no redirect after a failed check
    return request

"""Validation of URIs that e-services register (RFC 9700 §4.1, RFC 8252, OIDC Core §3.1.2.1).

Registered URIs are later compared by exact string match; here we refuse what may never be
registered: relative URIs, fragments, wildcards, userinfo, dangerous schemes and plain http
except on the loopback interface of the e-service's own machine.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, urlsplit

from idp.i18n import N_
from idp.reasons import Reason, Term

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "blob", "about"})
# A private-use scheme of a native app is a reverse domain name (RFC 8252 §7.1).
PRIVATE_USE_SCHEME = re.compile(r"^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$")
RESERVED_PARAMETERS = frozenset({"code", "state", "iss", "error", "id_token", "access_token"})


class InvalidURI(Reason, ValueError):
    """The URI may not be registered; the message says why, in plain words, and names it."""


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_uri(
    uri: str, *, kind: str = N_("redirect URI"), allow_private_scheme: bool = False
) -> str:
    """Return `uri` unchanged if it may be registered, else raise InvalidURI.

    `kind` names the field in the reason; give a message id (`N_(...)`) so it is translated."""
    term = Term(kind)
    if not uri or uri != uri.strip() or any(ch.isspace() or ord(ch) < 32 for ch in uri):
        raise InvalidURI(
            N_("%(kind)s must not be empty or contain spaces or control characters: '%(uri)s'"),
            kind=term,
            uri=uri,
        )
    if len(uri) > 2000:
        raise InvalidURI(
            N_("%(kind)s is longer than 2000 characters: '%(uri)s'"), kind=term, uri=uri
        )
    if "*" in uri:
        raise InvalidURI(N_("%(kind)s must not contain wildcards: '%(uri)s'"), kind=term, uri=uri)
    if "#" in uri:
        raise InvalidURI(N_("%(kind)s must not contain a fragment: '%(uri)s'"), kind=term, uri=uri)
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise InvalidURI(
            N_("%(kind)s is malformed (%(detail)s): '%(uri)s'"), kind=term, detail=exc, uri=uri
        ) from exc
    scheme = parts.scheme.lower()
    if not scheme:
        raise InvalidURI(N_("%(kind)s must be absolute (https://…): '%(uri)s'"), kind=term, uri=uri)
    if scheme in FORBIDDEN_SCHEMES:
        raise InvalidURI(
            N_("%(kind)s must not use the %(scheme)s: scheme: '%(uri)s'"),
            kind=term,
            scheme=scheme,
            uri=uri,
        )
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidURI(
            N_("%(kind)s must not contain user information before the host: '%(uri)s'"),
            kind=term,
            uri=uri,
        )
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise InvalidURI(N_("%(kind)s must name a host: '%(uri)s'"), kind=term, uri=uri)
        if scheme == "http" and not is_loopback(parts.hostname):
            raise InvalidURI(
                N_("%(kind)s must use https (plain http only on localhost/127.0.0.1): '%(uri)s'"),
                kind=term,
                uri=uri,
            )
        if port == 0:
            raise InvalidURI(N_("%(kind)s has an invalid port: '%(uri)s'"), kind=term, uri=uri)
    elif not (allow_private_scheme and PRIVATE_USE_SCHEME.match(scheme)):
        raise InvalidURI(N_("%(kind)s must use https: '%(uri)s'"), kind=term, uri=uri)
    names = {name.lower() for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    clashing = sorted(names & RESERVED_PARAMETERS)
    if clashing:
        raise InvalidURI(
            N_("%(kind)s must not carry the response parameter '%(name)s': '%(uri)s'"),
            kind=term,
            name=clashing[0],
            uri=uri,
        )
    return uri

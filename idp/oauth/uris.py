"""Validation of URIs that e-services register (RFC 9700 §4.1, RFC 8252, OIDC Core §3.1.2.1).

Registered URIs are later compared by exact string match; here we refuse what may never be
registered: relative URIs, fragments, wildcards, userinfo, dangerous schemes and plain http
except on the loopback interface of the e-service's own machine.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "blob", "about"})
# A private-use scheme of a native app is a reverse domain name (RFC 8252 §7.1).
PRIVATE_USE_SCHEME = re.compile(r"^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$")
RESERVED_PARAMETERS = frozenset({"code", "state", "iss", "error", "id_token", "access_token"})


class InvalidURI(ValueError):
    """The URI may not be registered; the message says why, in plain words."""


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
    uri: str, *, kind: str = "redirect URI", allow_private_scheme: bool = False
) -> str:
    """Return `uri` unchanged if it may be registered, else raise InvalidURI."""
    if not uri or uri != uri.strip() or any(ch.isspace() or ord(ch) < 32 for ch in uri):
        raise InvalidURI(f"{kind} must not be empty or contain spaces or control characters")
    if len(uri) > 2000:
        raise InvalidURI(f"{kind} is longer than 2000 characters")
    if "*" in uri:
        raise InvalidURI(f"{kind} must not contain wildcards")
    if "#" in uri:
        raise InvalidURI(f"{kind} must not contain a fragment")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise InvalidURI(f"{kind} is malformed: {exc}") from exc
    scheme = parts.scheme.lower()
    if not scheme:
        raise InvalidURI(f"{kind} must be absolute (https://…)")
    if scheme in FORBIDDEN_SCHEMES:
        raise InvalidURI(f"{kind} must not use the {scheme}: scheme")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidURI(f"{kind} must not contain user information before the host")
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise InvalidURI(f"{kind} must name a host")
        if scheme == "http" and not is_loopback(parts.hostname):
            raise InvalidURI(f"{kind} must use https (plain http only on localhost/127.0.0.1)")
        if port == 0:
            raise InvalidURI(f"{kind} has an invalid port")
    elif not (allow_private_scheme and PRIVATE_USE_SCHEME.match(scheme)):
        raise InvalidURI(f"{kind} must use https")
    names = {name.lower() for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    clashing = sorted(names & RESERVED_PARAMETERS)
    if clashing:
        raise InvalidURI(f"{kind} must not carry the response parameter {clashing[0]!r}")
    return uri

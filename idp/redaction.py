"""What logs never show: secrets in event fields, in request paths and in query strings.

Redaction goes by name. An event field or a query parameter whose name says it holds a secret
(`password`, `code`, `state`, any `..._token` or `..._secret`, ...) is shown as `[redacted]`,
unless its value is a boolean or None: `refresh_token=False` says that no token was issued, it
holds none. A route whose path carries a secret (the token of an emailed reset link) is a
`SecretPathRoute` that names it, and `LoggedPaths` shows the request paths of such routes with
that part redacted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.routing import BaseRoute, Route

REDACTED = "[redacted]"
SECRET_NAMES = frozenset(
    {
        "password",
        "confirm",
        "code",
        "otp",
        "recovery_code",
        "token",
        "id_token_hint",
        "state",
        "secret",
        "totp_secret",
        "code_verifier",
        "client_assertion",
        "assertion",
        "authorization",
        "cookie",
        "set-cookie",
        "session",
        "session_id",
    }
)
SECRET_SUFFIXES = ("_token", "_secret", "_password")
# Fields whose value is a URL or a path: secret query parameters in them are redacted.
URL_FIELDS = frozenset({"path", "url", "uri", "location", "referer", "redirect"})


def is_secret_name(name: str) -> bool:
    """Whether a field or parameter of this name holds a secret."""
    lowered = name.lower()
    return lowered in SECRET_NAMES or lowered.endswith(SECRET_SUFFIXES)


def redact_query(url: str) -> str:
    """`url` with the values of its secret query (and fragment) parameters redacted."""
    if "?" not in url and "#" not in url:
        return url
    rest, hash_sign, fragment = url.partition("#")
    base, question_mark, query = rest.partition("?")
    return f"{base}{question_mark}{_redact_pairs(query)}{hash_sign}{_redact_pairs(fragment)}"


def _redact_pairs(query: str) -> str:
    if "=" not in query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode(
        [(name, REDACTED if is_secret_name(name) else value) for name, value in pairs],
        safe="[]/:",
    )


def redact_fields(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: secret fields redacted, URLs without their secret parameters."""
    for key, value in event.items():
        if isinstance(value, bool) or value is None:
            continue
        if is_secret_name(key):
            event[key] = REDACTED
        elif isinstance(value, str) and _is_url_field(key):
            event[key] = redact_query(value)
    return event


def _is_url_field(name: str) -> bool:
    lowered = name.lower()
    return lowered in URL_FIELDS or lowered.endswith(("_uri", "_url"))


class SecretPathRoute(Route):
    """A route whose path carries a secret: `secret` names the path parameters that logs show
    as `[redacted]` (see `LoggedPaths`)."""

    def __init__(
        self, path: str, endpoint: Callable[..., Any], *, secret: Iterable[str], **kwargs: Any
    ) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.secret_params = frozenset(secret)
        if not self.secret_params or not self.secret_params <= set(self.param_convertors):
            raise ValueError(f"{path}: the secret must name parameters of the path")


class LoggedPaths:
    """Request paths as logs show them: the secret parameters of the app's `SecretPathRoute`s
    redacted. A path is matched by its beginning, before and without routing, so a request
    refused early (a body too large) or one with more after the secret is redacted too."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._patterns = [_pattern(r) for r in routes if isinstance(r, SecretPathRoute)]

    def __call__(self, path: str) -> str:
        for pattern in self._patterns:
            found = pattern.match(path)
            if found:
                for name in sorted(found.re.groupindex, key=found.start, reverse=True):
                    path = path[: found.start(name)] + REDACTED + path[found.end(name) :]
        return path


def _pattern(route: SecretPathRoute) -> re.Pattern[str]:
    """The beginning of the route's paths, each secret parameter a named group."""
    parts = re.split(r"{([^}:]+)(?::[^}]*)?}", route.path)
    regex = "^"
    for index, part in enumerate(parts):
        if index % 2 == 0:
            regex += re.escape(part)
        else:
            convertor = route.param_convertors[part].regex
            regex += f"(?P<{part}>{convertor})" if part in route.secret_params else convertor
    return re.compile(regex)

"""E-services (relying parties): register, list, show, rotate secret, disable."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import events
from idp.db.models import Client
from idp.oauth.scopes import KNOWN_SCOPES
from idp.oauth.uris import InvalidURI, validate_uri
from idp.security import hash_secret
from idp.services.errors import Conflict, InvalidInput, NotFound

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
SUBJECT_TYPES = ("public", "pairwise")
CLIENT_ID = re.compile(r"^[A-Za-z0-9._~-]{3,128}$")


@dataclass(frozen=True)
class NewClient:
    name: str
    redirect_uris: list[str] = field(default_factory=list)
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    backchannel_logout_uri: str | None = None
    auth_method: str = "client_secret_basic"
    jwks_uri: str | None = None
    grant_types: list[str] = field(default_factory=list)
    scope: str = "openid profile"
    first_party: bool = False
    subject_type: str = "public"
    client_id: str | None = None  # chosen by the operator (e.g. kept from a legacy system)


@dataclass(frozen=True)
class Registered:
    client: Client
    client_secret: str | None  # shown once, never stored


def _uri(value: str, kind: str, *, native: bool = False) -> str:
    try:
        return validate_uri(value, kind=kind, allow_private_scheme=native)
    except InvalidURI as exc:
        raise InvalidInput(f"{exc}: {value!r}") from None


def _validate(new: NewClient) -> dict[str, Any]:
    name = new.name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidInput("name must have 1 to 200 characters")
    if new.auth_method not in AUTH_METHODS:
        raise InvalidInput(
            f"auth method {new.auth_method!r} is not one of {', '.join(AUTH_METHODS)}"
        )
    public = new.auth_method == "none"
    grant_types = list(dict.fromkeys(new.grant_types or ["authorization_code", "refresh_token"]))
    for grant in grant_types:
        if grant not in GRANT_TYPES:
            raise InvalidInput(f"grant type {grant!r} is not one of {', '.join(GRANT_TYPES)}")
    if public and "client_credentials" in grant_types:
        raise InvalidInput("a public client (auth method none) cannot use client_credentials")
    if "refresh_token" in grant_types and "authorization_code" not in grant_types:
        raise InvalidInput("refresh_token requires the authorization_code grant")
    redirect_uris = list(dict.fromkeys(new.redirect_uris))
    if "authorization_code" in grant_types and not redirect_uris:
        raise InvalidInput("at least one redirect URI is required for authorization_code")
    if "authorization_code" not in grant_types and redirect_uris:
        raise InvalidInput("redirect URIs are only for the authorization_code grant")
    redirect_uris = [_uri(uri, "redirect URI", native=public) for uri in redirect_uris]
    post_logout = [
        _uri(uri, "post-logout redirect URI", native=public)
        for uri in dict.fromkeys(new.post_logout_redirect_uris)
    ]
    backchannel = (
        _uri(new.backchannel_logout_uri, "back-channel logout URI")
        if new.backchannel_logout_uri
        else None
    )
    jwks_uri = _uri(new.jwks_uri, "JWKS URI") if new.jwks_uri else None
    if new.auth_method == "private_key_jwt" and not jwks_uri:
        raise InvalidInput("private_key_jwt requires --jwks-uri")
    if jwks_uri and new.auth_method != "private_key_jwt":
        raise InvalidInput("a JWKS URI is only used with the private_key_jwt auth method")
    scopes = list(dict.fromkeys(new.scope.split()))
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if unknown:
        raise InvalidInput(f"scope {unknown[0]!r} is not one of {', '.join(KNOWN_SCOPES)}")
    if "authorization_code" in grant_types and "openid" not in scopes:
        scopes.insert(0, "openid")
    if new.subject_type not in SUBJECT_TYPES:
        raise InvalidInput(f"subject type must be one of {', '.join(SUBJECT_TYPES)}")
    return {
        "name": name,
        "token_endpoint_auth_method": new.auth_method,
        "redirect_uris": redirect_uris,
        "post_logout_redirect_uris": post_logout,
        "backchannel_logout_uri": backchannel,
        "jwks_uri": jwks_uri,
        "grant_types": grant_types,
        "scope": " ".join(scopes),
        "first_party": new.first_party,
        "subject_type": new.subject_type,
        "require_pkce": True,
    }


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def register_client(session: Session, new: NewClient, *, actor: str) -> Registered:
    fields = _validate(new)
    client_id = new.client_id or secrets.token_urlsafe(16)
    if not CLIENT_ID.fullmatch(client_id):
        raise InvalidInput("client id must be 3-128 letters, digits or . _ ~ - characters")
    if session.scalar(select(Client.id).where(Client.client_id == client_id)) is not None:
        raise Conflict(f"client id {client_id!r} is already registered")
    secret = new_client_secret() if fields["token_endpoint_auth_method"] in SECRET_METHODS else None
    client = Client(
        client_id=client_id,
        secret_hash=hash_secret(secret) if secret else None,
        secret_rotated_at=datetime.now(UTC) if secret else None,
        **fields,
    )
    session.add(client)
    session.flush()
    events.record(
        session,
        "admin.client_registered",
        actor=actor,
        client_id=client.client_id,
        name=client.name,
        auth_method=client.token_endpoint_auth_method,
        first_party=client.first_party,
    )
    return Registered(client, secret)


def get_client(session: Session, client_id: str) -> Client:
    client = session.scalar(select(Client).where(Client.client_id == client_id))
    if client is None:
        raise NotFound(f"no client {client_id!r}")
    return client


def list_clients(session: Session, *, limit: int = 100, offset: int = 0) -> list[Client]:
    statement = select(Client).order_by(Client.name, Client.id).limit(limit).offset(offset)
    return list(session.scalars(statement))


def rotate_secret(session: Session, client_id: str, *, actor: str) -> Registered:
    client = get_client(session, client_id)
    if client.token_endpoint_auth_method not in SECRET_METHODS:
        raise InvalidInput(
            f"client {client_id!r} authenticates with {client.token_endpoint_auth_method}, "
            "not a client secret"
        )
    secret = new_client_secret()
    client.secret_hash = hash_secret(secret)
    client.secret_rotated_at = datetime.now(UTC)
    events.record(session, "admin.client_secret_rotated", actor=actor, client_id=client_id)
    return Registered(client, secret)


def set_disabled(session: Session, client_id: str, disabled: bool, *, actor: str) -> Client:
    client = get_client(session, client_id)
    client.disabled_at = datetime.now(UTC) if disabled else None
    events.record(
        session,
        "admin.client_disabled" if disabled else "admin.client_enabled",
        actor=actor,
        client_id=client_id,
    )
    return client


def describe(client: Client) -> dict[str, Any]:
    """A client as operators see it: never the secret or its hash."""
    return {
        "client_id": client.client_id,
        "name": client.name,
        "auth_method": client.token_endpoint_auth_method,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "jwks_uri": client.jwks_uri,
        "grant_types": client.grant_types,
        "scope": client.scope,
        "first_party": client.first_party,
        "subject_type": client.subject_type,
        "disabled": client.disabled,
        "created_at": client.created_at.isoformat(),
    }

"""E-services (relying parties): register, list, show, change, rotate secret, disable."""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from idp import events
from idp.config import Settings
from idp.db.models import AccessToken, Client, RefreshToken, TokenGrant
from idp.i18n import N_, N_n
from idp.oauth.claims import CLAIM_SCOPE, sector, sector_of
from idp.oauth.keys import SUPPORTED_ALGS as SIGNING_ALGS
from idp.oauth.scopes import KNOWN_SCOPES, RATINGS_SCOPE, RESTRICTED_SCOPES
from idp.oauth.uris import InvalidURI, validate_uri
from idp.security import hash_secret, random_identifier
from idp.services.errors import Conflict, InvalidInput, NotFound
from idp.services.sector import check_sector_identifier

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
DEFAULT_GRANT_TYPES = ("authorization_code", "refresh_token")
SUBJECT_TYPES = ("public", "pairwise")
ACCESS_TOKEN_FORMATS = ("opaque", "jwt")
CLIENT_ID = re.compile(r"^[A-Za-z0-9._~-]{3,128}$")
# The scope of the admin API: only by client credentials, only for e-services an administrator
# allowed it explicitly (never by dynamic registration); no citizen token ever carries it.
ADMIN_SCOPE = "admin"
GRANTABLE_RESTRICTED = RESTRICTED_SCOPES | {ADMIN_SCOPE}
# Scopes for an e-service's own calls (client credentials), never for citizens' tokens.
SERVICE_SCOPES = frozenset({ADMIN_SCOPE, RATINGS_SCOPE})
CONTACT = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_CONTACTS = 10
MAX_LEGAL_BASIS = 2000
MAX_JWKS = 20000  # bytes of a key set given as JSON text (console, command line)


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
    jwks: dict[str, Any] | None = None  # public keys for private_key_jwt, instead of jwks_uri
    id_token_signed_response_alg: str | None = None
    userinfo_signed_response_alg: str | None = None
    access_token_format: str = "opaque"
    restricted_scopes: list[str] = field(default_factory=list)
    sector_identifier_uri: str | None = None
    require_pkce: bool = True
    # Administration metadata.
    frontchannel_logout_uri: str | None = None
    logo_uri: str | None = None
    contacts: list[str] = field(default_factory=list)
    allowed_claims: list[str] = field(default_factory=list)
    legal_basis: str | None = None


@dataclass(frozen=True)
class Registered:
    client: Client
    client_secret: str | None  # shown once, never stored


def _uri(value: str, kind: str, *, native: bool = False) -> str:
    """`value` if it may be registered as a `kind` (a message id, e.g. N_("logo URI"))."""
    try:
        return validate_uri(value, kind=kind, allow_private_scheme=native)
    except InvalidURI as exc:
        raise InvalidInput(exc.message, **exc.values) from None


def _choices(values: tuple[str, ...]) -> str:
    return ", ".join(values)


def _validate(new: NewClient) -> dict[str, Any]:
    name = new.name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidInput(N_("name must have 1 to 200 characters"))
    if new.auth_method not in AUTH_METHODS:
        raise InvalidInput(
            N_("auth method '%(value)s' is not one of %(choices)s"),
            value=new.auth_method,
            choices=_choices(AUTH_METHODS),
        )
    public = new.auth_method == "none"
    grant_types = list(dict.fromkeys(new.grant_types or DEFAULT_GRANT_TYPES))
    for grant in grant_types:
        if grant not in GRANT_TYPES:
            raise InvalidInput(
                N_("grant type '%(value)s' is not one of %(choices)s"),
                value=grant,
                choices=_choices(GRANT_TYPES),
            )
    if public and "client_credentials" in grant_types:
        raise InvalidInput(N_("a public client (auth method none) cannot use client_credentials"))
    if "refresh_token" in grant_types and "authorization_code" not in grant_types:
        raise InvalidInput(N_("refresh_token requires the authorization_code grant"))
    redirect_uris = list(dict.fromkeys(new.redirect_uris))
    if "authorization_code" in grant_types and not redirect_uris:
        raise InvalidInput(N_("at least one redirect URI is required for authorization_code"))
    if "authorization_code" not in grant_types and redirect_uris:
        raise InvalidInput(N_("redirect URIs are only for the authorization_code grant"))
    redirect_uris = [_uri(uri, N_("redirect URI"), native=public) for uri in redirect_uris]
    post_logout = [
        _uri(uri, N_("post-logout redirect URI"), native=public)
        for uri in dict.fromkeys(new.post_logout_redirect_uris)
    ]
    backchannel = (
        _uri(new.backchannel_logout_uri, N_("back-channel logout URI"))
        if new.backchannel_logout_uri
        else None
    )
    jwks_uri = _uri(new.jwks_uri, N_("JWKS URI")) if new.jwks_uri else None
    jwks = _public_jwks(new.jwks) if new.jwks is not None else None
    if new.auth_method == "private_key_jwt" and not (jwks_uri or jwks):
        raise InvalidInput(N_("private_key_jwt requires --jwks-uri or --jwks"))
    if jwks_uri and jwks:
        raise InvalidInput(N_("give either a JWKS URI or a JWKS, not both"))
    if (jwks_uri or jwks) and new.auth_method != "private_key_jwt":
        raise InvalidInput(N_("client keys are only used with the private_key_jwt auth method"))
    scopes = list(dict.fromkeys(new.scope.split()))
    unknown = [s for s in scopes if s not in KNOWN_SCOPES and s not in SERVICE_SCOPES]
    if unknown:
        raise InvalidInput(
            N_("scope '%(scope)s' is not one of %(choices)s"),
            scope=unknown[0],
            choices=_choices((*KNOWN_SCOPES, RATINGS_SCOPE)),
        )
    if RATINGS_SCOPE in scopes and "client_credentials" not in grant_types:
        raise InvalidInput(N_("the ratings scope needs the client_credentials grant"))
    if "authorization_code" in grant_types and "openid" not in scopes:
        scopes.insert(0, "openid")
    if new.subject_type not in SUBJECT_TYPES:
        raise InvalidInput(
            N_("subject type must be one of %(choices)s"), choices=_choices(SUBJECT_TYPES)
        )
    restricted = list(dict.fromkeys(new.restricted_scopes))
    for value in restricted:
        if value not in GRANTABLE_RESTRICTED:
            raise InvalidInput(N_("'%(scope)s' is not a restricted scope"), scope=value)
        if value not in scopes:
            scopes.append(value)
    for value in scopes:
        if value in GRANTABLE_RESTRICTED and value not in restricted:
            raise InvalidInput(
                N_("scope '%(scope)s' is restricted: allow it explicitly for this e-service"),
                scope=value,
            )
    for message, alg in (
        (N_("ID token algorithm must be one of %(choices)s"), new.id_token_signed_response_alg),
        (N_("userinfo algorithm must be one of %(choices)s"), new.userinfo_signed_response_alg),
    ):
        if alg is not None and alg not in SIGNING_ALGS:
            raise InvalidInput(message, choices=_choices(SIGNING_ALGS))
    if new.access_token_format not in ACCESS_TOKEN_FORMATS:
        raise InvalidInput(
            N_("access token format must be one of %(choices)s"),
            choices=_choices(ACCESS_TOKEN_FORMATS),
        )
    if public and not new.require_pkce:
        raise InvalidInput(N_("a public client (auth method none) always uses PKCE"))
    sector_uri = (
        _uri(new.sector_identifier_uri, N_("sector identifier URI"))
        if new.sector_identifier_uri
        else None
    )
    if new.subject_type == "pairwise" and not sector_uri:
        hosts = {urlsplit(uri).hostname for uri in redirect_uris}
        if len(hosts) > 1:
            raise InvalidInput(
                N_(
                    "pairwise subjects with redirect URIs on several hosts"
                    " need a sector identifier URI"
                )
            )
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
        "require_pkce": public or new.require_pkce,
        "jwks": jwks,
        "id_token_signed_response_alg": new.id_token_signed_response_alg,
        "userinfo_signed_response_alg": new.userinfo_signed_response_alg,
        "access_token_format": new.access_token_format,
        "restricted_scopes": restricted,
        "sector_identifier_uri": sector_uri,
        **_administration(new, scopes, grant_types),
    }


def _administration(new: NewClient, scopes: list[str], grant_types: list[str]) -> dict[str, Any]:
    """What administrators add: logo, contacts, front-channel logout, claims, legal basis."""
    if ADMIN_SCOPE in scopes and (
        grant_types != ["client_credentials"]
        or new.auth_method not in SECRET_METHODS | {"private_key_jwt"}
    ):
        raise InvalidInput(
            N_("the admin scope is only for a confidential client using client_credentials alone")
        )
    frontchannel = (
        _uri(new.frontchannel_logout_uri, N_("front-channel logout URI"))
        if new.frontchannel_logout_uri
        else None
    )
    logo = _uri(new.logo_uri, N_("logo URI")) if new.logo_uri else None
    contacts = list(dict.fromkeys(c.strip() for c in new.contacts if c.strip()))
    if len(contacts) > MAX_CONTACTS:
        raise InvalidInput(
            N_n("at most %(count)s contact", "at most %(count)s contacts", "count"),
            count=MAX_CONTACTS,
        )
    for contact in contacts:
        if len(contact) > 320 or not CONTACT.fullmatch(contact):
            raise InvalidInput(N_("contact '%(contact)s' is not an email address"), contact=contact)
    claims = list(dict.fromkeys(new.allowed_claims))
    for claim in claims:
        owner = CLAIM_SCOPE.get(claim)
        if owner is None or owner == "openid":
            raise InvalidInput(N_("'%(claim)s' is not a claim about citizens"), claim=claim)
        if owner not in scopes:
            raise InvalidInput(
                N_("claim '%(claim)s' needs the scope '%(scope)s'"), claim=claim, scope=owner
            )
    legal_basis = (new.legal_basis or "").strip() or None
    if legal_basis is not None and len(legal_basis) > MAX_LEGAL_BASIS:
        raise InvalidInput(
            N_n(
                "legal basis must have at most %(count)s character",
                "legal basis must have at most %(count)s characters",
                "count",
            ),
            count=MAX_LEGAL_BASIS,
        )
    return {
        "frontchannel_logout_uri": frontchannel,
        "logo_uri": logo,
        "contacts": contacts,
        "allowed_claims": claims,
        "legal_basis": legal_basis,
    }


def _public_jwks(value: dict[str, Any]) -> dict[str, Any]:
    """A client's key set: public keys only (a private or symmetric key is refused)."""
    keys = value.get("keys") if isinstance(value, dict) else None
    if not isinstance(keys, list) or not keys:
        raise InvalidInput(N_("the JWKS must be an object with a non-empty keys array"))
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC", "OKP"):
            raise InvalidInput(N_("the JWKS may hold only RSA, EC or OKP public keys"))
        if any(name in key for name in ("d", "p", "q", "dp", "dq", "qi", "k")):
            raise InvalidInput(N_("the JWKS must not contain private key material"))
    try:
        KeySet.import_key_set(value)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidInput(N_("the JWKS cannot be read: %(problem)s"), problem=exc) from None
    return {"keys": keys}


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


# What `update_client` may change: every field of `NewClient` but the client id. Those an
# e-service always has cannot be cleared (an empty list of grant types, at registration, means
# the default ones; in a change it would be a surprise).
UPDATABLE = tuple(f.name for f in dataclass_fields(NewClient) if f.name != "client_id")
LISTS = frozenset(f.name for f in dataclass_fields(NewClient) if f.default_factory is list)
FLAGS = frozenset({"first_party", "require_pkce"})
REQUIRED = FLAGS | {
    "name",
    "auth_method",
    "grant_types",
    "scope",
    "subject_type",
    "access_token_format",
}


@dataclass(frozen=True)
class ClientChanges:
    """Changes to a registered e-service: `NewClient` field names (all but `client_id`) and
    their new values; every field not named keeps its value. A list replaces the stored one;
    None (or an empty string or list) clears a value, except for the fields an e-service always
    has (`REQUIRED`). The result is checked by the rules of registration."""

    values: Mapping[str, Any]


@dataclass(frozen=True)
class CheckedClient:
    """An e-service's metadata that passed `check_client`, the fetch of its sector identifier
    URI included: what `register_client` writes, or, with `changes`, what `update_client`
    applies."""

    fields: dict[str, Any]
    client_id: str | None = None  # chosen by the operator
    sector_checked: bool = False  # the sector identifier URI was fetched and lists the URIs
    changes: ClientChanges | None = None  # for `update_client`


@dataclass(frozen=True)
class Updated:
    """What `update_client` did, as its audit event `admin.client_updated` records it."""

    client: Client
    # {field: {"before": ..., "after": ...}} for each field that changed (a JWKS shown by the
    # id and thumbprint of each key); empty when nothing changed (then nothing was written).
    changes: dict[str, dict[str, Any]]
    secret_removed: bool = False  # the auth method no longer uses a client secret
    grants_revoked: int = 0  # the e-service became a public client


def _wrong_type(name: str, value: Any) -> bool:
    if name in LISTS:
        return not isinstance(value, list) or not all(isinstance(v, str) for v in value)
    if name in FLAGS:
        return not isinstance(value, bool)
    if name == "jwks":
        return not isinstance(value, dict)
    return not isinstance(value, str)


def _as_registered(client: Client) -> NewClient:
    """A registered e-service's metadata, as it would be registered."""
    shown = describe(client)
    return NewClient(**{name: shown[name] for name in UPDATABLE})


def _changed(stored: Client, changes: ClientChanges) -> NewClient:
    """The e-service `stored` with `changes` made (their shape checked, not yet the rules)."""
    values: dict[str, Any] = {}
    for name, value in changes.values.items():
        if name == "client_id":
            raise InvalidInput(N_("the client id of an e-service cannot change"))
        if name not in UPDATABLE:
            raise InvalidInput(N_("'%(field)s' is not a field of an e-service"), field=name)
        if value is None or value == "" or value == []:
            if name in REQUIRED:
                raise InvalidInput(N_("'%(field)s' cannot be cleared"), field=name)
            value = [] if name in LISTS else None
        elif _wrong_type(name, value):
            raise InvalidInput(N_("'%(field)s' has a value of the wrong type"), field=name)
        values[name] = value
    return replace(_as_registered(stored), **values)


def _sector(uri: str | None, redirect_uris: list[str] | None) -> tuple[str | None, frozenset[str]]:
    """What a sector identifier URI's document vouches for: the URI and the redirect URIs."""
    return uri, frozenset(redirect_uris or [])


def _sector_of(fields: Mapping[str, Any]) -> tuple[str | None, frozenset[str]]:
    return _sector(fields["sector_identifier_uri"], fields["redirect_uris"])


def _needs_fetch(fields: dict[str, Any], stored: Client | None) -> bool:
    """Whether `fields` name a sector identifier URI that must be fetched: at registration, and
    when it or the redirect URIs differ from what `stored` has."""
    if not fields["sector_identifier_uri"]:
        return False
    return stored is None or _sector_of(fields) != _sector(
        stored.sector_identifier_uri, stored.redirect_uris
    )


def _validated(new: NewClient | ClientChanges, current: Client | None) -> CheckedClient:
    if isinstance(new, ClientChanges):
        if current is None:
            raise TypeError("changes are checked against the e-service as stored (current)")
        return CheckedClient(_validate(_changed(current, new)), changes=new)
    fields = _validate(new)
    if new.client_id is not None and not CLIENT_ID.fullmatch(new.client_id):
        raise InvalidInput(N_("client id must be 3-128 letters, digits or . _ ~ - characters"))
    return CheckedClient(fields, new.client_id)


async def check_client(
    new: NewClient | ClientChanges,
    settings: Settings | None = None,
    *,
    current: Client | None = None,
) -> CheckedClient:
    """Check `new` for `register_client`, or `ClientChanges` to `current` (the e-service as
    stored) for `update_client`. A sector identifier URI is fetched and checked, with the fetch
    limits of `settings` (without them such metadata is refused) — at registration, and on a
    change when it or the redirect URIs change. Touches no database: call it before the
    transaction that writes, so that a slow host never holds a connection or a lock."""
    checked = _validated(new, current)
    if not _needs_fetch(checked.fields, current):
        return checked
    sector, redirect_uris = checked.fields["sector_identifier_uri"], checked.fields["redirect_uris"]
    await check_sector_identifier(sector, redirect_uris, settings)
    return replace(checked, sector_checked=True)


def _vouched(fields: dict[str, Any], stored: Client | None, checked: CheckedClient | None) -> None:
    """Refuse `fields` if their sector identifier URI must be fetched and `check_client` did not
    fetch it for this very URI and these redirect URIs (the stored e-service changed
    meanwhile, or the metadata did not come from `check_client`)."""
    if not _needs_fetch(fields, stored):
        return
    if checked and checked.sector_checked and _sector_of(checked.fields) == _sector_of(fields):
        return
    raise Conflict(
        N_("sector identifier URI '%(uri)s' was not checked for this change; send it again"),
        uri=fields["sector_identifier_uri"],
    )


def register_client(session: Session, new: NewClient | CheckedClient, *, actor: str) -> Registered:
    """Register an e-service. Metadata naming a sector identifier URI must come from
    `check_client` (which fetches it, before the transaction)."""
    checked = new if isinstance(new, CheckedClient) else _validated(new, None)
    fields = checked.fields
    _vouched(fields, None, checked)
    client_id = checked.client_id or random_identifier()
    if session.scalar(select(Client.id).where(Client.client_id == client_id)) is not None:
        raise Conflict(N_("client id '%(client_id)s' is already registered"), client_id=client_id)
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
        raise NotFound(N_("no client '%(client_id)s'"), client_id=client_id)
    return client


def list_clients(session: Session, *, limit: int = 100, offset: int = 0) -> list[Client]:
    statement = select(Client).order_by(Client.name, Client.id).limit(limit).offset(offset)
    return list(session.scalars(statement))


def search_clients(
    session: Session, query: str | None = None, *, limit: int = 20, offset: int = 0
) -> tuple[list[Client], int]:
    """A page of e-services whose name or client id contains `query`, and the total count."""
    statement = select(Client)
    if query and query.strip():
        pattern = f"%{query.strip().lower()[:200]}%"
        statement = statement.where(
            func.lower(Client.name).like(pattern) | func.lower(Client.client_id).like(pattern)
        )
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    page = statement.order_by(Client.name, Client.id).limit(max(1, limit)).offset(max(0, offset))
    return list(session.scalars(page)), int(total)


def update_client(
    session: Session, client_id: str, changes: ClientChanges | CheckedClient, *, actor: str
) -> Updated:
    """Change some of an e-service's metadata; the result is checked by the rules of
    registration, and nothing is written if it breaks one. The changes are made to the
    e-service as it is now (a change made meanwhile to another field stays). When the sector
    identifier URI or the redirect URIs change, they must come from
    `check_client(changes, ..., current=...)`, which fetched the URI; if the e-service changed in
    between so that what was fetched no longer applies, the change is refused (send it again).

    The secret follows the auth method: a change to a secret-based method issues none (the
    e-service cannot authenticate until `rotate_secret` gives it one); a change away from one
    removes the stored secret hash; a change to a public client (`none`) revokes the grants the
    e-service holds, whose refresh tokens needed its credentials until then. One audit event,
    `admin.client_updated`, names each changed field with its value before and after."""
    client = get_client(session, client_id)
    checked = changes if isinstance(changes, CheckedClient) else None
    wanted = checked.changes if checked is not None else changes
    if not isinstance(wanted, ClientChanges):
        raise TypeError("update_client takes ClientChanges, or what check_client made of them")
    fields = _validate(_changed(client, wanted))
    _vouched(fields, client, checked)
    before = _metadata(client)
    was_method = client.token_endpoint_auth_method
    for name, value in fields.items():
        if getattr(client, name) != value:
            setattr(client, name, value)
    after = _metadata(client)
    diff = {
        name: {"before": _audited(name, before[name]), "after": _audited(name, after[name])}
        for name in UPDATABLE
        if before[name] != after[name]
    }
    if not diff:
        return Updated(client, diff)
    secret_removed = client.token_endpoint_auth_method not in SECRET_METHODS and bool(
        client.secret_hash
    )
    if secret_removed:
        client.secret_hash = None
        client.secret_rotated_at = None
    revoked = 0
    if client.is_public and was_method != "none":
        revoked = revoke_tokens(session, client_id, reason="client_made_public")
    session.flush()
    outcome: dict[str, Any] = {"secret_removed": True} if secret_removed else {}
    if revoked:
        outcome["grants_revoked"] = revoked
    events.record(
        session, "admin.client_updated", actor=actor, client_id=client_id, changes=diff, **outcome
    )
    return Updated(client, diff, secret_removed, revoked)


def _metadata(client: Client) -> dict[str, Any]:
    """What an update may change, by the names of `NewClient`."""
    shown = describe(client)
    return {name: shown[name] for name in UPDATABLE}


def _audited(name: str, value: Any) -> Any:
    """A value as the audit shows it: a JWKS by the id and RFC 7638 thumbprint of each key."""
    if name != "jwks" or value is None:
        return value
    keys = KeySet.import_key_set(value).keys  # public keys that passed `_public_jwks`
    return [
        {"kid": raw.get("kid"), "thumbprint": key.thumbprint()}
        for raw, key in zip(value["keys"], keys, strict=True)
    ]


def subjects_change(current: Client, checked: CheckedClient) -> bool:
    """Whether `checked` (changes to the e-service `current`, from `check_client`) would give
    citizens other subject identifiers (`sub`) at the e-service: a change between public and
    pairwise, or a pairwise e-service's move to another sector. It would then no longer
    recognise the citizens it knew."""
    fields = checked.fields
    if fields["subject_type"] != current.subject_type:
        return True
    if current.subject_type != "pairwise":
        return False
    after = sector(fields["sector_identifier_uri"], fields["redirect_uris"], current.client_id)
    return after != sector_of(current)


def revoke_tokens(session: Session, client_id: str, *, reason: str = "client_disabled") -> int:
    """Revoke every live grant of an e-service with its access and refresh tokens."""
    now = datetime.now(UTC)
    live = select(TokenGrant.id).where(
        TokenGrant.client_id == client_id, TokenGrant.revoked_at.is_(None)
    )
    grant_ids = list(session.scalars(live))
    if not grant_ids:
        return 0
    session.execute(
        update(TokenGrant)
        .where(TokenGrant.id.in_(grant_ids))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )
    for table in (AccessToken, RefreshToken):
        session.execute(
            update(table)
            .where(table.grant_id.in_(grant_ids), table.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
    return len(grant_ids)


def rotate_secret(session: Session, client_id: str, *, actor: str) -> Registered:
    client = get_client(session, client_id)
    if client.token_endpoint_auth_method not in SECRET_METHODS:
        raise InvalidInput(
            N_("client '%(client_id)s' authenticates with %(method)s, not a client secret"),
            client_id=client_id,
            method=client.token_endpoint_auth_method,
        )
    secret = new_client_secret()
    client.secret_hash = hash_secret(secret)
    client.secret_rotated_at = datetime.now(UTC)
    events.record(session, "admin.client_secret_rotated", actor=actor, client_id=client_id)
    return Registered(client, secret)


def set_disabled(session: Session, client_id: str, disabled: bool, *, actor: str) -> Client:
    client = get_client(session, client_id)
    client.disabled_at = datetime.now(UTC) if disabled else None
    if disabled:
        revoked = revoke_tokens(session, client_id)
        events.record(
            session,
            "admin.client_disabled",
            actor=actor,
            client_id=client_id,
            grants_revoked=revoked,
        )
    else:
        events.record(session, "admin.client_enabled", actor=actor, client_id=client_id)
    return client


def set_indicator_settings(
    session: Session,
    client_id: str,
    *,
    public_stats: bool | None = None,
    feedback_sampling_rate: float | None = None,
    actor: str,
) -> Client:
    """Whether the e-service's indicators appear on the public `/stats` page, and the share of
    its completed sign-ins after which the citizen is asked how easy it was (0 to 1). Its audit
    event, `admin.client_indicator_settings`, names each changed value before and after (none is
    written when nothing changed)."""
    client = get_client(session, client_id)
    changed: dict[str, Any] = {}
    before = {
        "public_stats": bool(client.public_stats),
        "feedback_sampling_rate": client.feedback_sampling_rate or 0.0,
    }
    if feedback_sampling_rate is not None:
        rate = float(feedback_sampling_rate)
        if not math.isfinite(rate) or not 0 <= rate <= 1:
            raise InvalidInput(N_("the feedback sampling rate must be a number from 0 to 1"))
        client.feedback_sampling_rate = changed["feedback_sampling_rate"] = rate
    if public_stats is not None:
        client.public_stats = changed["public_stats"] = bool(public_stats)
    diff = {
        name: {"before": before[name], "after": value}
        for name, value in changed.items()
        if before[name] != value
    }
    if not diff:
        return client
    events.record(
        session,
        "admin.client_indicator_settings",
        actor=actor,
        client_id=client_id,
        changes=diff,
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
        "sector_identifier_uri": client.sector_identifier_uri,
        "require_pkce": client.require_pkce,
        "restricted_scopes": client.restricted_scopes,
        "access_token_format": client.access_token_format,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "userinfo_signed_response_alg": client.userinfo_signed_response_alg,
        "jwks": client.jwks,
        "has_secret": client.secret_hash is not None,
        "frontchannel_logout_uri": client.frontchannel_logout_uri,
        "logo_uri": client.logo_uri,
        "contacts": client.contacts or [],
        "allowed_claims": client.allowed_claims or [],
        "legal_basis": client.legal_basis,
        "public_stats": bool(client.public_stats),
        "feedback_sampling_rate": client.feedback_sampling_rate or 0.0,
        "disabled": client.disabled,
        "created_at": client.created_at.isoformat(),
    }

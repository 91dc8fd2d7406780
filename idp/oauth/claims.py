"""The claims model: what is known about a citizen, and which claims an e-service may receive.

Claims are released by scope (OIDC Core §5.4), or one by one through the `claims` request
parameter (§5.5), and only those the citizen consented to. National identifiers belong to the
restricted `national_id` scope: asking for them by name does not get around that scope.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.db.models import Client, PairwiseSubject, User
from idp.i18n import N_
from idp.json_input import JsonInputError, parse_json
from idp.oauth.scopes import RESTRICTED_SCOPES, SCOPE_CLAIMS
from idp.security import random_token

# Claims that describe the authentication, never the citizen (OIDC Core §2).
AUTHENTICATION_CLAIMS = ("acr", "amr", "auth_time")

CLAIM_SCOPE = {claim: scope for scope, claims in SCOPE_CLAIMS.items() for claim in claims}
CLAIMS_SUPPORTED: tuple[str, ...] = (
    "iss",
    "aud",
    "exp",
    "iat",
    "azp",
    "nonce",
    "at_hash",
    "sid",
    *AUTHENTICATION_CLAIMS,
    *dict.fromkeys(c for claims in SCOPE_CLAIMS.values() for c in claims),
)
MAX_CLAIMS_PARAMETER = 4096


class ClaimsRequestError(ValueError):
    """The `claims` parameter is malformed."""


def parse_claims_parameter(raw: str | None) -> dict[str, dict[str, Any]] | None:
    """Check the `claims` request parameter (OIDC Core §5.5) and keep its known members."""
    if raw is None or raw == "":
        return None
    try:
        value = parse_json(raw, max_size=MAX_CLAIMS_PARAMETER)
    except JsonInputError as exc:
        raise ClaimsRequestError(f"The claims parameter is {exc}.") from None
    if not isinstance(value, dict):
        raise ClaimsRequestError("The claims parameter must be a JSON object.")
    result: dict[str, dict[str, Any]] = {}
    for target in ("userinfo", "id_token"):
        members = value.get(target)
        if members is None:
            continue
        if not isinstance(members, dict):
            raise ClaimsRequestError(f"claims.{target} must be a JSON object.")
        kept: dict[str, Any] = {}
        for name, spec in members.items():
            if spec is not None and not isinstance(spec, dict):
                raise ClaimsRequestError(f"claims.{target}.{name} must be null or an object.")
            if spec and "values" in spec and not isinstance(spec["values"], list):
                raise ClaimsRequestError(f"claims.{target}.{name}.values must be an array.")
            kept[str(name)] = spec
        result[target] = kept
    return result


def requested_acr(claims: dict[str, dict[str, Any]] | None) -> tuple[list[str], bool]:
    """`acr` values asked for in the `claims` parameter, and whether they are essential."""
    spec = ((claims or {}).get("id_token") or {}).get("acr") or {}
    values = spec.get("values") or ([spec["value"]] if "value" in spec else [])
    return [str(v) for v in values], bool(spec.get("essential"))


def releasable(
    scope: str,
    claims: dict[str, dict[str, Any]] | None,
    target: str,
    *,
    allowed: Collection[str] = (),
) -> list[str]:
    """Names of the citizen claims a token with `scope` may carry to `target`
    (`userinfo` or `id_token`). Scope claims go to userinfo; the `claims` parameter adds
    individual claims to either, but never a restricted scope's claims without the scope.
    A non-empty `allowed` (the e-service's registered allow-list) keeps only those claims."""
    scopes = set(scope.split())
    names: list[str] = []
    if target == "userinfo":
        for value in scope.split():
            names.extend(SCOPE_CLAIMS.get(value, ()))
    for name in (claims or {}).get(target) or {}:
        owner = CLAIM_SCOPE.get(name)
        if owner is None or owner == "openid":
            continue
        if owner in RESTRICTED_SCOPES and owner not in scopes:
            continue
        names.append(name)
    return [n for n in dict.fromkeys(names) if n != "sub" and (not allowed or n in allowed)]


def consent_claims(
    scope: str, claims: dict[str, dict[str, Any]] | None, *, allowed: Collection[str] = ()
) -> list[str]:
    """Every citizen claim a request may lead to: what the consent page lists."""
    names = releasable(scope, claims, "userinfo", allowed=allowed) + releasable(
        scope, claims, "id_token", allowed=allowed
    )
    return sorted(dict.fromkeys(names))


def user_claims(user: User, names: list[str]) -> dict[str, Any]:
    """The values of `names` for `user`; claims without a value are left out."""
    values: dict[str, Any] = {
        "given_name": user.given_name,
        "family_name": user.family_name,
        "birthdate": user.birthdate.isoformat() if user.birthdate else None,
        "gender": user.gender,
        "locale": user.locale,
        "email": user.email,
        "phone_number": user.phone_number,
        "address": user.address or None,
        "public_service_number": user.public_service_number,
        "identity_document_number": user.identity_document_number,
    }
    full_name = " ".join(p for p in (user.given_name, user.family_name) if p)
    values["name"] = full_name or None
    values["updated_at"] = int(user.updated_at.timestamp()) if user.updated_at else None
    if user.email:
        values["email_verified"] = bool(user.email_verified)
    if user.phone_number:
        values["phone_number_verified"] = bool(user.phone_number_verified)
    return {name: values[name] for name in names if values.get(name) is not None}


# Subjects -----------------------------------------------------------------------------------


def sector_of(client: Client) -> str:
    """The sector of a pairwise e-service: the host of its `sector_identifier_uri`, else the
    one host of its redirect URIs (registration makes sure there is exactly one)."""
    return sector(client.sector_identifier_uri, client.redirect_uris, client.client_id)


def sector(sector_identifier_uri: str | None, redirect_uris: list[str], client_id: str) -> str:
    """The sector of an e-service with this metadata (see `sector_of`)."""
    if sector_identifier_uri:
        return (urlsplit(sector_identifier_uri).hostname or "").lower()
    hosts = sorted({(urlsplit(uri).hostname or "").lower() for uri in redirect_uris})
    return hosts[0] if hosts else client_id


def subject_for(db: Session, user: User, client: Client) -> str:
    """The `sub` this e-service knows the citizen by: public, or pairwise per sector.

    A pairwise subject is random, stored once per citizen and sector, and never reassigned."""
    if client.subject_type != "pairwise":
        return user.sub
    sector = sector_of(client)
    query = select(PairwiseSubject.sub).where(
        PairwiseSubject.user_id == user.id, PairwiseSubject.sector == sector
    )
    existing = db.scalar(query)
    if existing is not None:
        return existing
    try:
        with db.begin_nested():
            db.add(PairwiseSubject(user_id=user.id, sector=sector, sub=random_token(24)))
    except IntegrityError:
        pass  # made at the same moment by another request: use that one
    found = db.scalar(query)
    assert found is not None
    return found


def user_for_subject(db: Session, sub: str, client: Client) -> User | None:
    """The citizen an e-service names by `sub` (for `id_token_hint`)."""
    if client.subject_type != "pairwise":
        return db.scalar(select(User).where(User.sub == sub))
    row = db.scalar(
        select(PairwiseSubject).where(
            PairwiseSubject.sub == sub, PairwiseSubject.sector == sector_of(client)
        )
    )
    return db.get(User, row.user_id) if row else None


# What the consent page says -----------------------------------------------------------------

CLAIM_LABELS: dict[str, str] = {
    "name": N_("Full name"),
    "given_name": N_("Given name"),
    "family_name": N_("Family name"),
    "birthdate": N_("Date of birth"),
    "gender": N_("Gender"),
    "locale": N_("Preferred language"),
    "updated_at": N_("When your profile was last updated"),
    "email": N_("Email address"),
    "email_verified": N_("Whether your email address is verified"),
    "phone_number": N_("Phone number"),
    "phone_number_verified": N_("Whether your phone number is verified"),
    "address": N_("Postal address"),
    "public_service_number": N_("Public service number"),
    "identity_document_number": N_("Identity document number"),
}

SCOPE_LABELS: dict[str, str] = {
    "offline_access": N_("Keep access while you are not signed in"),
}

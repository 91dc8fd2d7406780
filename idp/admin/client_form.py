"""The form of an e-service's metadata, shared by the register wizard and the edit page
(`templates/admin/client_form.html`): its fields as the form holds them, what the services
take from them, and which field a refusal is about (the error summary links to it)."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import FormData

from idp.admin.client_fields import SUBJECT_TYPES
from idp.admin.pages import MAX_FIELD, form_checked, form_field
from idp.i18n import N_
from idp.json_input import JsonInputError, parse_json
from idp.oauth.claims import CLAIM_SCOPE
from idp.oauth.scopes import KNOWN_SCOPES
from idp.services import InvalidInput, ServiceError
from idp.services import clients as client_service

ALL_SCOPES = (*KNOWN_SCOPES, client_service.ADMIN_SCOPE)
CLAIMS = tuple(name for name, scope in CLAIM_SCOPE.items() if scope != "openid")
CHOICES = {
    "auth_methods": client_service.AUTH_METHODS,
    "grant_types": client_service.GRANT_TYPES,
    "subject_types": client_service.SUBJECT_TYPES,
    "subject_labels": SUBJECT_TYPES,
    "token_formats": client_service.ACCESS_TOKEN_FORMATS,
    "scopes": ALL_SCOPES,
    "claims": CLAIMS,
}
Values = dict[str, Any]  # the form's fields: text, lists of ticked values, a flag


def blank() -> Values:
    """The wizard's fields before anything is typed."""
    return {
        "name": "",
        "client_id": "",
        "logo_uri": "",
        "contacts": "",
        "redirect_uris": "",
        "post_logout_redirect_uris": "",
        "backchannel_logout_uri": "",
        "frontchannel_logout_uri": "",
        "auth_method": "client_secret_basic",
        "jwks_uri": "",
        "jwks": "",
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "profile"],
        "allowed_claims": [],
        "subject_type": "public",
        "sector_identifier_uri": "",
        "access_token_format": "opaque",
        "first_party": False,
        "legal_basis": "",
    }


def stored(shown: dict[str, Any]) -> Values:
    """The fields of a registered e-service (`clients.describe`), as the form shows them."""
    scopes = shown["scope"].split()
    return {
        "name": shown["name"],
        "client_id": shown["client_id"],
        "logo_uri": shown["logo_uri"] or "",
        "contacts": "\n".join(shown["contacts"]),
        "redirect_uris": "\n".join(shown["redirect_uris"]),
        "post_logout_redirect_uris": "\n".join(shown["post_logout_redirect_uris"]),
        "backchannel_logout_uri": shown["backchannel_logout_uri"] or "",
        "frontchannel_logout_uri": shown["frontchannel_logout_uri"] or "",
        "auth_method": shown["auth_method"],
        "jwks_uri": shown["jwks_uri"] or "",
        "jwks": json.dumps(shown["jwks"], indent=2) if shown["jwks"] else "",
        "grant_types": [g for g in client_service.GRANT_TYPES if g in shown["grant_types"]],
        "scopes": [s for s in ALL_SCOPES if s in scopes],
        "allowed_claims": [c for c in CLAIMS if c in shown["allowed_claims"]],
        "subject_type": shown["subject_type"],
        "sector_identifier_uri": shown["sector_identifier_uri"] or "",
        "access_token_format": shown["access_token_format"],
        "first_party": bool(shown["first_party"]),
        "legal_basis": shown["legal_basis"] or "",
    }


def restored(value: Any) -> Values | None:
    """Fields the form carried as JSON (the ones it first showed), if they have the form's
    shape: each field, of its type."""
    if not isinstance(value, dict):
        return None
    fields: Values = {}
    for name, empty in blank().items():
        found = value.get(name)
        if isinstance(empty, list):
            if not isinstance(found, list) or not all(isinstance(v, str) for v in found):
                return None
        elif type(found) is not type(empty):
            return None
        fields[name] = found
    return fields


def submitted(form: FormData | None) -> Values:
    """The fields as the form sent them (each cut to its limit; unknown choices dropped)."""

    def field(name: str, limit: int = MAX_FIELD) -> str:
        return form_field(form, name, limit)

    def many(name: str, allowed: tuple[str, ...]) -> list[str]:
        values = form.getlist(name) if form is not None else []
        return [v for v in values if isinstance(v, str) and v in allowed]

    return {
        "name": field("name", 200),
        "client_id": field("client_id", 128),
        "logo_uri": field("logo_uri", 2000),
        "contacts": field("contacts"),
        "redirect_uris": field("redirect_uris"),
        "post_logout_redirect_uris": field("post_logout_redirect_uris"),
        "backchannel_logout_uri": field("backchannel_logout_uri", 2000),
        "frontchannel_logout_uri": field("frontchannel_logout_uri", 2000),
        "auth_method": field("auth_method", 32),
        "jwks_uri": field("jwks_uri", 2000),
        "jwks": field("jwks", client_service.MAX_JWKS),
        "grant_types": many("grant_types", client_service.GRANT_TYPES),
        "scopes": many("scopes", ALL_SCOPES),
        "allowed_claims": many("allowed_claims", CLAIMS),
        "subject_type": field("subject_type", 16),
        "sector_identifier_uri": field("sector_identifier_uri", 2000),
        "access_token_format": field("access_token_format", 16),
        "first_party": form_checked(form, "first_party"),
        "legal_basis": field("legal_basis", client_service.MAX_LEGAL_BASIS + 1),
    }


def new_client(values: Values) -> client_service.NewClient:
    """The service's input from the form's fields (raises InvalidInput on unreadable JSON)."""
    jwks = None
    if values["jwks"]:
        try:
            jwks = parse_json(values["jwks"], max_size=client_service.MAX_JWKS)
        except JsonInputError:
            raise InvalidInput(N_("the JWKS is not valid JSON")) from None
    scopes = list(values["scopes"])
    return client_service.NewClient(
        name=values["name"],
        client_id=values["client_id"] or None,
        logo_uri=values["logo_uri"] or None,
        contacts=values["contacts"].split(),
        redirect_uris=values["redirect_uris"].split(),
        post_logout_redirect_uris=values["post_logout_redirect_uris"].split(),
        backchannel_logout_uri=values["backchannel_logout_uri"] or None,
        frontchannel_logout_uri=values["frontchannel_logout_uri"] or None,
        auth_method=values["auth_method"],
        jwks_uri=values["jwks_uri"] or None,
        jwks=jwks,
        grant_types=list(values["grant_types"]),
        scope=" ".join(scopes),
        restricted_scopes=[s for s in scopes if s in client_service.GRANTABLE_RESTRICTED],
        allowed_claims=list(values["allowed_claims"]),
        subject_type=values["subject_type"],
        sector_identifier_uri=values["sector_identifier_uri"] or None,
        access_token_format=values["access_token_format"],
        first_party=values["first_party"],
        legal_basis=values["legal_basis"] or None,
    )


def changes(before: Values, after: Values) -> client_service.ClientChanges:
    """What the administrator changed in the form (`before`: the fields as the form showed
    them), as the service's changes: only those fields, so that what someone else changed
    meanwhile in another field stays."""
    old, new = new_client(before), new_client(after)
    return client_service.ClientChanges(
        {
            name: getattr(new, name)
            for name in client_service.UPDATABLE
            if getattr(new, name) != getattr(old, name)
        }
    )


# Which field of the form a refusal is about: by the kind of URI it names, by the service's
# field it names, else by its message.
_URI_KINDS = {
    N_("redirect URI"): "redirect_uris",
    N_("post-logout redirect URI"): "post_logout_redirect_uris",
    N_("back-channel logout URI"): "backchannel_logout_uri",
    N_("front-channel logout URI"): "frontchannel_logout_uri",
    N_("JWKS URI"): "jwks_uri",
    N_("sector identifier URI"): "sector_identifier_uri",
    N_("logo URI"): "logo_uri",
}
_SERVICE_FIELDS = {"scope": "scopes", "restricted_scopes": "scopes"}
_MESSAGES = {
    "name must have 1 to 200 characters": "name",
    "auth method '%(value)s' is not one of %(choices)s": "auth_method",
    "grant type '%(value)s' is not one of %(choices)s": "grant_types",
    "a public client (auth method none) cannot use client_credentials": "grant_types",
    "refresh_token requires the authorization_code grant": "grant_types",
    "at least one redirect URI is required for authorization_code": "redirect_uris",
    "redirect URIs are only for the authorization_code grant": "redirect_uris",
    "private_key_jwt requires --jwks-uri or --jwks": "jwks_uri",
    "give either a JWKS URI or a JWKS, not both": "jwks",
    "client keys are only used with the private_key_jwt auth method": "auth_method",
    "scope '%(scope)s' is not one of %(choices)s": "scopes",
    "subject type must be one of %(choices)s": "subject_type",
    "'%(scope)s' is not a restricted scope": "scopes",
    "scope '%(scope)s' is restricted: allow it explicitly for this e-service": "scopes",
    "access token format must be one of %(choices)s": "access_token_format",
    "a public client (auth method none) always uses PKCE": "auth_method",
    "pairwise subjects with redirect URIs on several hosts need a sector identifier URI": (
        "sector_identifier_uri"
    ),
    "the admin scope is only for a confidential client using client_credentials alone": "scopes",
    "at most %(count)s contacts": "contacts",
    "contact '%(contact)s' is not an email address": "contacts",
    "'%(claim)s' is not a claim about citizens": "allowed_claims",
    "claim '%(claim)s' needs the scope '%(scope)s'": "allowed_claims",
    "legal basis must have at most %(count)s characters": "legal_basis",
    "the JWKS is not valid JSON": "jwks",
    "the JWKS must be an object with a non-empty keys array": "jwks",
    "the JWKS may hold only RSA, EC or OKP public keys": "jwks",
    "the JWKS must not contain private key material": "jwks",
    "the JWKS cannot be read: %(problem)s": "jwks",
    "client id must be 3-128 letters, digits or . _ ~ - characters": "client_id",
    "client id '%(client_id)s' is already registered": "client_id",
}


def field_of(error: ServiceError, fields: Values) -> str:
    """The id of the form's field `error` is about ("" when it names none of `fields`)."""
    kind = error.values.get("kind")
    named = error.values.get("field")
    message = error.message if isinstance(error.message, str) else error.message.singular
    if kind in _URI_KINDS:
        found = _URI_KINDS[str(kind)]
    elif isinstance(named, str):
        found = _SERVICE_FIELDS.get(named, named)
    elif message.startswith("sector identifier URI"):
        found = "sector_identifier_uri"
    else:
        found = _MESSAGES.get(message, "")
    return found if found in fields else ""

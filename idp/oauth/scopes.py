"""Scopes and the claims each releases (OIDC Core §5.4, plus national identifiers)."""

from __future__ import annotations

NATIONAL_ID_SCOPE = "national_id"

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "openid": ("sub",),
    "profile": (
        "name",
        "given_name",
        "family_name",
        "birthdate",
        "gender",
        "locale",
        "updated_at",
    ),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "address": ("address",),
    NATIONAL_ID_SCOPE: ("public_service_number", "identity_document_number"),
}

# Scopes an e-service may be allowed; `offline_access` asks for a refresh token.
KNOWN_SCOPES: tuple[str, ...] = (*SCOPE_CLAIMS, "offline_access")

# Scopes that only e-services explicitly authorised by an administrator may request.
RESTRICTED_SCOPES = frozenset({NATIONAL_ID_SCOPE})

# The scope of the e-services' rating API (`POST /ratings`): by client credentials only, for an
# e-service registered with it; never in a citizen's token.
RATINGS_SCOPE = "ratings"

"""How the console names an e-service's fields: one label each, on its detail page, in the
change banner and in the audit log's account of a change (`admin.client_updated`)."""

from __future__ import annotations

from idp.i18n import N_

# By the names of `idp.services.clients.NewClient` (and `describe`).
FIELDS = {
    "name": N_("Name"),
    "client_id": N_("Client id"),
    "auth_method": N_("Authentication"),
    "redirect_uris": N_("Redirect URIs"),
    "post_logout_redirect_uris": N_("Addresses after sign-out"),
    "backchannel_logout_uri": N_("Back-channel logout URI"),
    "frontchannel_logout_uri": N_("Front-channel logout URI"),
    "jwks_uri": N_("JWKS URI"),
    "jwks": N_("Public keys (JWKS)"),
    "grant_types": N_("Grant types"),
    "scope": N_("Scopes it may ask for"),
    "restricted_scopes": N_("Restricted scopes it is allowed"),
    "allowed_claims": N_("Claims it may receive"),
    "subject_type": N_("Subject identifiers"),
    "sector_identifier_uri": N_("Sector identifier URI"),
    "access_token_format": N_("Access token format"),
    "first_party": N_("State e-service (no consent asked)"),
    "require_pkce": N_("PKCE required"),
    "id_token_signed_response_alg": N_("ID token algorithm"),
    "userinfo_signed_response_alg": N_("Userinfo algorithm"),
    "logo_uri": N_("Logo URL"),
    "contacts": N_("Contacts"),
    "legal_basis": N_("Legal basis"),
    "public_stats": N_("Shown on the public statistics page"),
    "feedback_sampling_rate": N_("Citizens asked after sign-in (share)"),
}

# The kinds of subject identifier, as an administrator chooses between them.
SUBJECT_TYPES = {
    "public": N_("The same at every e-service (public)"),
    "pairwise": N_("Different at each e-service (pairwise)"),
}

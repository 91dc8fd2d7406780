"""The admin API's request and response bodies (their JSON Schemas go into the OpenAPI
document). Requests refuse unknown members; the services check the values themselves."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from idp.services.transactions import CHANNELS


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _absent_means_unchanged(schema: dict[str, Any]) -> None:
    """A merge patch's members have no default: one left out changes nothing."""
    for member in schema.get("properties", {}).values():
        member.pop("default", None)


class Patch(Body):
    """A JSON merge patch (RFC 7396): a member left out stays as it is, null clears a value
    (only where the schema allows null); read its changes with `model_dump(exclude_unset=True)`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_absent_means_unchanged)


class ClientIn(Body):
    """An e-service to register (the same rules as the CLI and the console's wizard)."""

    name: str = Field(min_length=1, max_length=200)
    client_id: str | None = Field(default=None, max_length=128)
    redirect_uris: list[str] = Field(default_factory=list, max_length=20)
    post_logout_redirect_uris: list[str] = Field(default_factory=list, max_length=20)
    backchannel_logout_uri: str | None = Field(default=None, max_length=2000)
    frontchannel_logout_uri: str | None = Field(default=None, max_length=2000)
    auth_method: str = Field(default="client_secret_basic", max_length=32)
    jwks_uri: str | None = Field(default=None, max_length=2000)
    jwks: dict[str, Any] | None = None
    grant_types: list[str] = Field(default_factory=list, max_length=5)
    scope: str = Field(default="openid profile", max_length=500)
    restricted_scopes: list[str] = Field(default_factory=list, max_length=5)
    allowed_claims: list[str] = Field(default_factory=list, max_length=30)
    first_party: bool = False
    subject_type: str = Field(default="public", max_length=16)
    sector_identifier_uri: str | None = Field(default=None, max_length=2000)
    id_token_signed_response_alg: str | None = Field(default=None, max_length=16)
    userinfo_signed_response_alg: str | None = Field(default=None, max_length=16)
    access_token_format: str = Field(default="opaque", max_length=16)
    require_pkce: bool = True
    logo_uri: str | None = Field(default=None, max_length=2000)
    contacts: list[str] = Field(default_factory=list, max_length=10)
    legal_basis: str | None = Field(default=None, max_length=2000)


class ClientPatch(Patch):
    """Changes to an e-service (the members of `ClientIn` but its id). A list replaces the
    stored one; null or [] clears a value that may be empty. The result is checked by the
    rules of registration. (The defaults below are never used: a member left out is unset.)"""

    name: str = Field(default_factory=str, min_length=1, max_length=200)
    redirect_uris: list[str] | None = Field(default=None, max_length=20)
    post_logout_redirect_uris: list[str] | None = Field(default=None, max_length=20)
    backchannel_logout_uri: str | None = Field(default=None, max_length=2000)
    frontchannel_logout_uri: str | None = Field(default=None, max_length=2000)
    auth_method: str = Field(default_factory=str, max_length=32)
    jwks_uri: str | None = Field(default=None, max_length=2000)
    jwks: dict[str, Any] | None = None
    grant_types: list[str] = Field(default_factory=list, min_length=1, max_length=5)
    scope: str = Field(default_factory=str, max_length=500)
    restricted_scopes: list[str] | None = Field(default=None, max_length=5)
    allowed_claims: list[str] | None = Field(default=None, max_length=30)
    first_party: bool = Field(default_factory=bool)
    subject_type: str = Field(default_factory=str, max_length=16)
    sector_identifier_uri: str | None = Field(default=None, max_length=2000)
    id_token_signed_response_alg: str | None = Field(default=None, max_length=16)
    userinfo_signed_response_alg: str | None = Field(default=None, max_length=16)
    access_token_format: str = Field(default_factory=str, max_length=16)
    require_pkce: bool = Field(default_factory=bool)
    logo_uri: str | None = Field(default=None, max_length=2000)
    contacts: list[str] | None = Field(default=None, max_length=10)
    legal_basis: str | None = Field(default=None, max_length=2000)


class RotateKeyIn(Body):
    alg: Literal["RS256", "ES256", "PS256", "EdDSA"] = "RS256"
    immediately: bool = False


class RetireKeyIn(Body):
    unpublish: bool = False


class InitialTokenIn(Body):
    uses: int = Field(default=1, ge=1, le=1000)
    expires_in: int | None = Field(default=None, ge=60, le=30 * 86400)
    note: str | None = Field(default=None, max_length=200)


MONTH = r"^[0-9]{4}-[0-9]{2}$"


class IndicatorSettingsIn(Body):
    """Leave a member out to keep its value."""

    public_stats: bool | None = Field(
        default=None, description="Show the e-service's indicators on the public /stats page."
    )
    feedback_sampling_rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Share of completed sign-ins after which the citizen is asked how easy it "
        "was (at most once per feedback_prompt_window_days).",
    )


class ChannelTotalIn(Body):
    client_id: str = Field(min_length=1, max_length=128)
    month: str = Field(pattern=MONTH, description="YYYY-MM, begun already.")
    channel: str = Field(max_length=16, json_schema_extra={"enum": list(CHANNELS)})
    transactions: int = Field(ge=0, le=10**12)


class ChannelTotalsIn(Body):
    """Each item replaces what was stored for its e-service, month and channel."""

    items: list[ChannelTotalIn] = Field(min_length=1, max_length=10000)


class CostIn(Body):
    client_id: str = Field(min_length=1, max_length=128)
    month: str = Field(pattern=MONTH, description="YYYY-MM, begun already.")
    amount: float = Field(
        ge=0, le=10**13, description="In the stats_currency, at most two decimals."
    )


class CostsIn(Body):
    """Each item replaces what was stored for its e-service and month."""

    items: list[CostIn] = Field(min_length=1, max_length=10000)


class ClientOut(BaseModel):
    client_id: str
    name: str
    auth_method: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    backchannel_logout_uri: str | None
    frontchannel_logout_uri: str | None
    jwks_uri: str | None
    jwks: dict[str, Any] | None
    has_secret: bool = Field(
        description="Whether a client secret is stored (a secret-based e-service without one "
        "gets it from rotate-secret)."
    )
    grant_types: list[str]
    scope: str
    first_party: bool
    subject_type: str
    sector_identifier_uri: str | None
    require_pkce: bool
    restricted_scopes: list[str]
    allowed_claims: list[str]
    access_token_format: str
    id_token_signed_response_alg: str | None
    userinfo_signed_response_alg: str | None
    logo_uri: str | None
    contacts: list[str]
    legal_basis: str | None
    public_stats: bool = Field(description="Its indicators are shown on the public /stats page.")
    feedback_sampling_rate: float = Field(
        description="Share of completed sign-ins after which the citizen is asked (0 to 1)."
    )
    disabled: bool
    created_at: str


class RegisteredOut(ClientOut):
    client_secret: str | None = Field(description="Shown once; null without a secret.")


class SecretOut(BaseModel):
    client_id: str
    client_secret: str


class ClientPage(BaseModel):
    items: list[ClientOut]
    total: int


class CitizenOut(BaseModel):
    username: str
    sub: str
    email: str | None
    given_name: str | None
    family_name: str | None
    birthdate: str | None
    phone_number: str | None
    admin: bool
    totp: bool
    disabled: bool
    created_at: str


class CitizenPage(BaseModel):
    items: list[CitizenOut]
    total: int


class SessionsEndedOut(BaseModel):
    username: str
    ended: int


class KeyOut(BaseModel):
    kid: str
    alg: str
    status: str
    created_at: str
    activates_at: str
    signing_until: str | None
    published_until: str | None


class KeyList(BaseModel):
    items: list[KeyOut]


class AuditEntryOut(BaseModel):
    id: int
    seq: int | None
    at: str
    type: str
    outcome: str
    actor: str | None
    user_id: int | None
    client_id: str | None
    ip: str | None
    request_id: str | None
    data: dict[str, Any]
    prev_hash: str | None
    hash: str | None


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    total: int


class VerificationOut(BaseModel):
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    anchor_seq: int
    anchor_hash: str
    problem: str | None
    seq: int | None
    event_id: int | None


class InitialTokenOut(BaseModel):
    initial_access_token: str = Field(description="Shown once.")
    uses: int
    expires_at: str
    registration_endpoint: str


class ErrorOut(BaseModel):
    error: str
    error_description: str


class WrittenOut(BaseModel):
    written: int = Field(description="How many rows were stored (all or none).")


class ChannelTotalOut(BaseModel):
    client_id: str
    month: str
    channel: str
    transactions: int


class ChannelTotalList(BaseModel):
    items: list[ChannelTotalOut]


class CostOut(BaseModel):
    client_id: str
    month: str
    amount: float
    currency: str


class CostList(BaseModel):
    items: list[CostOut]


class CommentOut(BaseModel):
    id: int
    client_id: str
    source: str = Field(description="signin (our question) or eservice (the e-service's).")
    score: int
    comment: str
    occurred_on: str
    created_at: str
    erased_after: str | None


class CommentPage(BaseModel):
    items: list[CommentOut]
    total: int

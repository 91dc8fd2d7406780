"""The durable state of the provider: one class per table."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from idp.db.types import JSONType, UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """A citizen (or an administrator) who signs in."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sub: Mapped[str] = mapped_column(String(64), unique=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    given_name: Mapped[str | None] = mapped_column(String(200))
    family_name: Mapped[str | None] = mapped_column(String(200))
    birthdate: Mapped[date | None] = mapped_column(Date)
    gender: Mapped[str | None] = mapped_column(String(32))
    phone_number: Mapped[str | None] = mapped_column(String(32))
    phone_number_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    address: Mapped[dict[str, Any] | None] = mapped_column(JSONType())
    locale: Mapped[str | None] = mapped_column(String(16))
    # National identifiers, released only under the restricted `national_id` scope.
    public_service_number: Mapped[str | None] = mapped_column(String(32))
    identity_document_number: Mapped[str | None] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    totp: Mapped[TotpCredential | None] = relationship(
        back_populates="user", cascade="all, delete-orphan", uselist=False
    )

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


class TotpCredential(Base):
    """A citizen's authenticator app: the seed (encrypted) and the last time step accepted."""

    __tablename__ = "totp_credentials"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="totp")


class Client(Base):
    """An e-service (relying party) registered with the provider."""

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str | None] = mapped_column(String(128))
    secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    redirect_uris: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(2000))
    frontchannel_logout_uri: Mapped[str | None] = mapped_column(String(2000))
    jwks_uri: Mapped[str | None] = mapped_column(String(2000))
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSONType())
    grant_types: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    scope: Mapped[str] = mapped_column(Text, default="openid")
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    require_pkce: Mapped[bool] = mapped_column(Boolean, default=True)
    subject_type: Mapped[str] = mapped_column(String(16), default="public")
    id_token_signed_response_alg: Mapped[str | None] = mapped_column(String(16))
    # Protocol options (OIDC Dynamic Client Registration metadata names where one exists).
    userinfo_signed_response_alg: Mapped[str | None] = mapped_column(String(16))
    access_token_format: Mapped[str] = mapped_column(String(16), default="opaque")
    restricted_scopes: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    sector_identifier_uri: Mapped[str | None] = mapped_column(String(2000))
    # Administration: what the console shows and the consent page explains.
    logo_uri: Mapped[str | None] = mapped_column(String(2000))
    contacts: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    legal_basis: Mapped[str | None] = mapped_column(Text)
    # Claims the e-service may receive (empty: every claim of its scopes).
    allowed_claims: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    # Indicators: shown on the public /stats page; the share of completed sign-ins after which
    # the citizen is asked how easy it was (at most once per window, `idp.services.feedback`).
    public_stats: Mapped[bool] = mapped_column(Boolean, default=False)
    feedback_sampling_rate: Mapped[float] = mapped_column(Float, default=0.0)
    # Dynamic registration (RFC 7591/7592): hash of the registration access token.
    registration_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"


class Event(Base):
    """One thing that happened: an authentication step, a token, a logout, an admin action.

    Feeds the audit log, the indicators and the citizen's access history. Never holds a secret.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_type_at", "type", "at"),
        Index("ix_events_user_id_at", "user_id", "at"),
        # The audit sealer's queue: entries not yet in the chain (idp/audit/chain.py).
        Index(
            "ix_events_unsealed",
            "id",
            postgresql_where=text("seq IS NULL"),
            sqlite_where=text("seq IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    type: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32), default="success")
    actor: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    client_id: Mapped[str | None] = mapped_column(String(128))
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    # The audit chain (idp/audit/chain.py): position, hash of the previous entry, own hash.
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


# Sign-in ------------------------------------------------------------------------------------


class SsoSession(Base):
    """A citizen's single sign-on session. The browser holds only an opaque random value whose
    SHA-256 is `token_hash`; `sid` is the public session id put in ID and logout tokens."""

    __tablename__ = "sso_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    acr: Mapped[str] = mapped_column(String(32))
    amr: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class Interaction(Base):
    """A validated authorization request waiting for the citizen to sign in (and consent).

    `/authorize` stores it and sends the browser to `/login/<id>`; when sign-in is done the
    browser goes to `/authorize/resume/<id>`, which answers the e-service.
    """

    __tablename__ = "interactions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    force_login: Mapped[bool] = mapped_column(Boolean, default=False)
    required_acr: Mapped[str | None] = mapped_column(String(32))
    login_hint: Mapped[str | None] = mapped_column(String(320))
    ui_locales: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    amr: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    browser_hash: Mapped[str | None] = mapped_column(String(64))
    # The sign-in pages' own bookkeeping (username typed, pages still to show); no secret in
    # the clear (an authenticator seed being set up is kept sealed: `idp.auth.totp.seal`).
    signin: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PasswordReset(Base):
    """An emailed password-reset link. Only the SHA-256 of its token is stored; single use."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    interaction_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# Protocol -----------------------------------------------------------------------------------


class AuthorizationCode(Base):
    """A single-use authorization code (only its SHA-256 is stored) and what it grants."""

    __tablename__ = "authorization_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(Text)
    claims: Mapped[dict[str, Any] | None] = mapped_column(JSONType())
    nonce: Mapped[str | None] = mapped_column(String(512))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(16))
    sid: Mapped[str | None] = mapped_column(String(64))
    acr: Mapped[str] = mapped_column(String(32))
    amr: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    grant_id: Mapped[int | None] = mapped_column(BigInteger)


class TokenGrant(Base):
    """What one authorization (a redeemed code, or a client-credentials call) granted: the
    family of access and refresh tokens issued from it, revoked together."""

    __tablename__ = "token_grants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(Text)
    claims: Mapped[dict[str, Any] | None] = mapped_column(JSONType())
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    acr: Mapped[str | None] = mapped_column(String(32))
    amr: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    auth_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(64))


class AccessToken(Base):
    """An access token: opaque or JWT, either way found by the SHA-256 of its text."""

    __tablename__ = "access_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    format: Mapped[str] = mapped_column(String(16))
    grant_id: Mapped[int] = mapped_column(
        ForeignKey("token_grants.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RefreshToken(Base):
    """A refresh token (hash only). Each use rotates it; a second use revokes its grant."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    grant_id: Mapped[int] = mapped_column(
        ForeignKey("token_grants.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Consent(Base):
    """A citizen's consent for an e-service to receive a set of scopes and claims."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_user_client", "user_id", "client_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(Text)
    claims: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UsedJti(Base):
    """`jti` of a client assertion already accepted (each may be used once)."""

    __tablename__ = "used_jtis"
    __table_args__ = (Index("uq_used_jtis_client_jti", "client_id", "jti", unique=True),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128))
    jti: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class PairwiseSubject(Base):
    """The `sub` a citizen has towards one sector: made once, never reassigned."""

    __tablename__ = "pairwise_subjects"
    __table_args__ = (Index("uq_pairwise_subjects_user_sector", "user_id", "sector", unique=True),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    sector: Mapped[str] = mapped_column(String(255))
    sub: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# Second factors and throttling ------------------------------------------------------------------


class RecoveryCode(Base):
    """One single-use recovery code of a citizen, stored as a salted SHA-256 only."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    salt: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EmailCode(Base):
    """A one-time code sent by email: stored hashed, short-lived, a few attempts, single use."""

    __tablename__ = "email_codes"
    __table_args__ = (Index("ix_email_codes_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32))
    interaction_id: Mapped[str | None] = mapped_column(String(64))
    salt: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    sent_to: Mapped[str] = mapped_column(String(320))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginThrottle(Base):
    """Consecutive failed sign-in attempts of one account, and its lock if any."""

    __tablename__ = "login_throttles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_until_unlocked: Mapped[bool] = mapped_column(Boolean, default=False)


class ThrottleHit(Base):
    """One failed attempt counted in a sliding window (per client address), when the counters
    live in the database rather than in Redis."""

    __tablename__ = "throttle_hits"
    __table_args__ = (Index("ix_throttle_hits_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


# Administration and audit ---------------------------------------------------------------------


class AuditChainHead(Base):
    """The one row that orders the audit chain: the last sealed entry, and the anchor left by
    pruning (the position and hash of the last entry removed)."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    anchor_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    anchor_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InitialAccessToken(Base):
    """A token an administrator issues so that an e-service can register itself (RFC 7591 §3).
    Only its SHA-256 is stored; it allows `uses_left` registrations until `expires_at`."""

    __tablename__ = "initial_access_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    uses_left: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# Indicators and the citizen's account ---------------------------------------------------------


class StatsCount(Base):
    """One cell of the indicator rollups: how many of `metric` (split by `dim`) an e-service
    (`client_id`, or `*` for all of them) had in one period (`period` d/w/m starting `start`).
    Maintained incrementally from the events by `idp.stats.rollup`."""

    __tablename__ = "stats_counts"

    period: Mapped[str] = mapped_column(String(1), primary_key=True)
    start: Mapped[date] = mapped_column(Date, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    dim: Mapped[str] = mapped_column(String(64), primary_key=True, default="")
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class StatsSet(Base):
    """The citizens a distinct count has counted, as a serialized 64-bit Roaring bitmap: one set
    per period (`d`/`w`/`m` starting `start`), e-service (or `*`) and metric; `period` `e` (ever,
    `start` = `EVER`) holds everyone who ever signed in to the e-service (new vs returning).
    Exact unique counts of any range are unions of these sets."""

    __tablename__ = "stats_sets"

    period: Mapped[str] = mapped_column(String(1), primary_key=True)
    start: Mapped[date] = mapped_column(Date, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    members: Mapped[bytes] = mapped_column(LargeBinary)


class StatsState(Base):
    """How far the rollups have read: the audit position (`seq`) of the last event counted, and
    the expiry time up to which unfinished sign-ins were counted as abandoned."""

    __tablename__ = "stats_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    abandoned_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FeedbackPrompt(Base):
    """That a citizen was asked how easy it was to sign in to an e-service, and whether they
    answered (or skipped): the one-question-per-window rule, and the one answer per question.

    The citizen is named only by `citizen_ref`, a keyed hash of the citizen and the e-service
    (`idp.services.feedback.citizen_reference`): no rating links to it, and `idp janitor`
    deletes the row once the window has passed."""

    __tablename__ = "feedback_prompts"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    citizen_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class FeedbackRating(Base):
    """One rating (1-5) of an e-service: from our question after a sign-in (`source` `signin`)
    or posted by the e-service after a transaction (`eservice`). Names no citizen. A comment
    is kept until `comment_expires_at`, then `idp janitor` erases it."""

    __tablename__ = "feedback_ratings"
    __table_args__ = (Index("ix_feedback_ratings_client_id_created_at", "client_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[str] = mapped_column(String(128))
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    comment_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # When the rated sign-in or transaction happened (its day is the one the rating counts on).
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChannelTotal(Base):
    """How many transactions an e-service handled in a month through one channel (`online`,
    `in_person`, ...), as the e-service reports them: the base of digital take-up and of the
    cost per transaction."""

    __tablename__ = "channel_totals"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)  # its first day
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    transactions: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ServiceCost(Base):
    """What an e-service cost in a month (all channels), in hundredths of the currency of the
    `stats_currency` setting, as an administrator entered it."""

    __tablename__ = "service_costs"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)  # its first day
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SecurityReport(Base):
    """A citizen's "this wasn't me" about an entry of their access history, for administrators."""

    __tablename__ = "security_reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    event_type: Mapped[str | None] = mapped_column(String(64))
    client_id: Mapped[str | None] = mapped_column(String(128))
    event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sessions_ended: Mapped[int] = mapped_column(Integer, default=0)
    grants_revoked: Mapped[int] = mapped_column(Integer, default=0)
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(200))


# Single logout ------------------------------------------------------------------------------


class SsoSessionClient(Base):
    """An e-service that received an authorization code under a single sign-on session: the
    e-services told when that session ends (written when the code is issued)."""

    __tablename__ = "sso_session_clients"
    __table_args__ = (
        Index("uq_sso_session_clients_session_client", "session_id", "client_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sso_sessions.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LogoutDelivery(Base):
    """A back-channel logout an e-service must hear about (the outbox). A fresh logout token is
    signed for every attempt; `next_attempt_at` is empty once delivered or given up."""

    __tablename__ = "logout_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    sid: Mapped[str | None] = mapped_column(String(64))
    sub: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # being delivered
    last_error: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    abandoned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

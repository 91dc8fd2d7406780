"""Typed settings.

Every field is read from an ``IDP_<NAME>`` environment variable or from the optional TOML file
named by ``IDP_CONFIG_FILE``; environment variables win over the file. The docstring under each
field is its documentation (``idp config reference`` prints the generated reference).
"""

from __future__ import annotations

import ipaddress
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

SigningAlg = Literal["RS256", "ES256", "PS256", "EdDSA"]
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


WEAK_PASSWORD_HASHING = (
    "password hashing is below OWASP's minimum (password_hash_memory_kib at least 47104, or"
    " 19456 with password_hash_iterations at least 2)"
)


class Settings(BaseSettings):
    """The provider's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="IDP_",
        extra="forbid",
        use_attribute_docstrings=True,
        validate_default=True,
        frozen=True,
    )

    issuer: str = "http://localhost:8000"
    """Public base URL of the provider, exactly as e-services see it (the `iss` of every token).
    Must be https in production; plain http is accepted only for localhost development."""

    environment: Literal["development", "production"] = "development"
    """`production` refuses unsafe defaults (http issuer, generated keys and secrets) instead of
    warning about them, and switches logs to JSON."""

    data_dir: Path = Path("data")
    """Folder for the embedded database file and generated development secrets. Made readable
    by the owner only (0700) if it does not exist; the database, its write-ahead log and the
    secrets in it always are (0600)."""

    database_url: str = ""
    """SQLAlchemy URL of the database. Empty means a SQLite file `idp.db` in `data_dir`.
    `postgresql://…` URLs use psycopg 3."""

    database_connect_timeout: float = Field(default=3.0, gt=0)
    """Seconds to wait for a database connection before answering 503."""

    database_statement_timeout: float = Field(default=10.0, gt=0)
    """Seconds after which a single database statement is cancelled (PostgreSQL). On SQLite, how
    long a write waits for its turn (the database takes one writer at a time) before the
    request is answered "try again shortly"."""

    database_sqlite_synchronous: Literal["normal", "full"] = "normal"
    """SQLite only: `normal` keeps every committed transaction through a crash or `kill -9` of
    the provider, and may lose the last ones if the machine itself loses power; `full` also
    survives a power loss, at the cost of a disk flush per transaction."""

    database_pool_size: int = Field(default=10, ge=1)
    """Connections kept open per process (PostgreSQL). Also how many requests a process works
    on at once in its threads (the others wait their turn in the event loop): more threads than
    connections only contend for the interpreter and the pool."""

    group_commit_max_rows: int = Field(default=256, ge=0, le=10000)
    """Group commit: the token endpoint's rows (grants, tokens, audit events) of concurrent
    client-credentials requests are written by one writer per process, in multi-row INSERTs and
    one COMMIT per batch of at most this many rows; each request is answered only once its batch
    has committed, and a batch that fails answers each of its requests 503. 0 turns it off:
    each request commits its own transaction."""

    group_commit_wait_ms: float = Field(default=2.0, ge=0, le=1000)
    """Group commit: how long the writer waits, after the first request of a batch, for others
    to join it (it commits earlier when `group_commit_max_rows` is reached). 0: a batch is what
    arrived while the previous one was being written."""

    keys_dir: Path = Path("keys")
    """Folder of signing keys (one JSON file per key, readable by the owner only). An empty folder
    gets an RS256 and an ES256 key on first start."""

    redis_url: str | None = None
    """Optional Redis URL for counters shared by several processes (rate limits)."""

    secret_key: SecretStr | None = None
    """Key that encrypts secrets at rest (one-time-code seeds) and protects cookies. At least 32
    characters. Empty in development: a random one is generated in `data_dir/secret.key`."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level of log lines written."""

    log_format: Literal["auto", "json", "console"] = "auto"
    """`json` for log collectors, `console` for people; `auto` is JSON in production."""

    max_request_body: int = Field(default=65536, ge=4096, le=16 * 1024 * 1024)
    """Largest request body, in bytes. A longer one is refused with 413 before it is read: at
    once when its `Content-Length` says so, else as soon as that many bytes have arrived. JSON
    documents (registration metadata, admin API bodies) are limited to 64 KiB whatever this
    says, and to 16 levels of nesting."""

    authorization_code_lifetime: int = Field(default=60, ge=1, le=600)
    """Seconds an authorization code may be redeemed (single use)."""

    access_token_lifetime: int = Field(default=600, ge=30, le=86400)
    """Seconds an access token is valid."""

    id_token_lifetime: int = Field(default=600, ge=30, le=86400)
    """Seconds an ID token is valid."""

    refresh_token_lifetime: int = Field(default=43200, ge=60)
    """Absolute lifetime in seconds of a refresh-token family; rotation never extends it."""

    interaction_lifetime: int = Field(default=900, ge=60, le=7200)
    """Seconds a citizen has to finish signing in before the pending request expires."""

    session_idle_timeout: int = Field(default=1800, ge=60)
    """Seconds of inactivity after which a single sign-on session ends (NIST AAL2: 30 min)."""

    session_absolute_timeout: int = Field(default=43200, ge=300)
    """Seconds after authentication at which a single sign-on session ends (NIST AAL2: 12 h)."""

    require_second_factor: bool = True
    """Citizens must pass a one-time code after their password; a citizen without an
    authenticator app enrols one at the next sign-in."""

    password_hash_memory_kib: int = Field(default=47104, ge=1024, le=4 * 1024 * 1024)
    """Memory argon2id uses to hash and check one password, in KiB (46 MiB). With
    `password_hash_iterations`, what one password check costs (about 0.1 s of one core here):
    calibrate to the machine (OWASP's argon2id settings). Production refuses less than one of
    OWASP's minimum settings (46 MiB with 1 iteration, or 19 MiB with 2). A stored password made
    with other settings is hashed again with these at its citizen's next sign-in."""

    password_hash_iterations: int = Field(default=2, ge=1, le=20)
    """argon2id passes over its memory for one password (see `password_hash_memory_kib`)."""

    password_reset_lifetime: int = Field(default=1800, ge=300, le=86400)
    """Seconds an emailed password-reset link stays valid (single use)."""

    password_reset_daily_limit: int = Field(default=5, ge=1, le=100)
    """Password-reset emails one account can be sent within 24 hours (one a minute at most).
    Beyond it the page answers exactly as usual, so nothing tells whether the account exists,
    but no email leaves (an `auth.password_reset_requested` event with reason `daily_limit`)."""

    jwks_max_age: int = Field(default=300, ge=0)
    """`Cache-Control: max-age` of the JWKS and discovery documents, in seconds."""

    key_activation_delay: int = Field(default=600, ge=0)
    """Seconds a rotated-in key is published before it signs anything. Must be at least
    `jwks_max_age`, so that every e-service has seen it first."""

    default_signing_alg: SigningAlg = "RS256"
    """Algorithm of ID tokens for e-services that do not ask for another."""

    mail_backend: Literal["outbox", "smtp", "console"] = "outbox"
    """How emails (one-time codes, reset links) leave: `smtp` sends them; `outbox` writes one
    JSON file per message in `data_dir/outbox/` (development and tests); `console` only logs
    that a message was sent, without its content."""

    mail_from: str = "Digital identity <no-reply@localhost>"
    """`From` address of every email the provider sends."""

    smtp_host: str = "localhost"
    """Mail server that relays the provider's emails (`mail_backend = "smtp"`)."""

    smtp_port: int = Field(default=587, ge=1, le=65535)
    """Port of the mail server: usually 587 with `starttls`, 465 with `ssl`."""

    smtp_username: str | None = None
    """User name for the mail server; empty means no authentication."""

    smtp_password: SecretStr | None = None
    """Password for the mail server."""

    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    """`starttls` upgrades the connection, `ssl` is TLS from the start, `none` is plain text
    (only for a relay on the same machine)."""

    smtp_timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for the mail server before giving up on a message."""

    throttle_lock_after: int = Field(default=10, ge=3, le=30)
    """Consecutive failed sign-in attempts after which an account is locked for
    `throttle_lock_duration` (again after each further run of as many failures)."""

    throttle_lock_duration: int = Field(default=900, ge=60, le=86400)
    """Seconds a temporarily locked account stays locked."""

    throttle_max_failures: int = Field(default=50, ge=10, le=100)
    """Consecutive failed attempts after which an account stays locked until an administrator
    unlocks it (`idp users unlock`) or the citizen resets the password (NIST: at most 100)."""

    throttle_ip_max_failures: int = Field(default=30, ge=1)
    """Failed sign-in attempts from one client address within `throttle_ip_window` after which
    that address must wait. Raise it for networks where many citizens share one address."""

    throttle_ip_window: int = Field(default=300, ge=10, le=86400)
    """Seconds of the sliding window of `throttle_ip_max_failures`."""

    http_concurrency_limit: int = Field(default=1000, ge=2, le=100000)
    """Connections and requests one `idp serve` process holds at once (idle and slow
    connections included); beyond it, new requests get 503 at once instead of exhausting the
    process's memory or file descriptors."""

    http_keep_alive_timeout: int = Field(default=5, ge=1, le=300)
    """Seconds an idle keep-alive connection stays open after a response (`idp serve`)."""

    http_header_timeout: float = Field(default=10.0, gt=0, le=300)
    """Seconds a client has to send a request's line and headers in full, from opening the
    connection or the end of the previous response; then `idp serve` closes the connection, so
    a client sending its headers slowly (slowloris) holds nothing for long."""

    http_max_header_size: int = Field(default=16384, ge=4096, le=1048576)
    """Bytes a request's line and headers may take (`idp serve`); a larger head gets 431 and
    its connection is closed: complete, by its request line and header lines; still arriving,
    by the bytes received for it, so what one connection can make the process hold stays
    bounded (docs/security.md, "Connections")."""

    client_fetch_timeout: float = Field(default=3.0, gt=0, le=30)
    """Seconds a whole fetch of an e-service's `jwks_uri` or `sector_identifier_uri` may take
    (resolving, connecting, TLS and the answer together); then it is abandoned. Redirects are
    never followed."""

    client_fetch_backoff: float = Field(default=5.0, gt=0, le=3600)
    """Seconds a `jwks_uri` that could not be fetched is not tried again; the wait doubles
    with each further failure, up to `client_fetch_backoff_max`. Meanwhile the e-service's
    `private_key_jwt` authentications fail at once."""

    client_fetch_backoff_max: float = Field(default=300.0, gt=0, le=86400)
    """The longest wait before a failing `jwks_uri` is tried again, in seconds."""

    client_jwks_cache_seconds: int = Field(default=300, ge=0)
    """Seconds an e-service's JWKS fetched from its `jwks_uri` is reused; an unknown `kid`
    triggers an early refetch, at most one every ten seconds."""

    client_jwks_cache_entries: int = Field(default=1000, ge=1, le=1_000_000)
    """How many `jwks_uri` key sets (and recent failures) each process remembers; the least
    recently used is forgotten first."""

    client_fetch_private_addresses: bool = False
    """Allow fetching e-service URLs that resolve to loopback or private addresses. Only for
    development and tests: in production it would let a registered URL reach internal hosts."""

    audit_retention_days: int = Field(default=1825, ge=30)
    """Days audit entries are kept. `idp audit prune` removes older ones and anchors the chain
    at the last entry removed, so what remains still verifies (export them first)."""

    admin_reauth_seconds: int = Field(default=300, ge=30, le=3600)
    """Every action of the admin console (registering an e-service, rotating a secret or a key,
    disabling, enabling, unlocking, resetting a second factor, ending sessions) needs an
    authentication at most this many seconds old; otherwise the administrator signs in again
    and the action is not done."""

    initial_access_token_lifetime: int = Field(default=86400, ge=60, le=30 * 86400)
    """Default seconds an initial access token for dynamic client registration stays valid."""

    stats_min_cell: int = Field(default=5, ge=1, le=1000)
    """Indicators never show a figure about fewer citizens than this: such a cell (and a period
    of an e-service with fewer citizens) is suppressed on the dashboard and in its exports."""

    stats_rollup_interval: float = Field(default=60.0, ge=0)
    """Seconds between two counts of new events into the indicators by each provider process
    (one process at a time does the work), so the dashboard is at most about this much behind.
    0 turns the background count off: then only `idp janitor` and `idp stats rollup` count."""

    stats_adult_population: int | None = Field(default=None, ge=1)
    """How many adults (18 and over) live in the country: the base of the share of the adult
    population with an active digital identity. Empty: that share is not shown."""

    stats_currency: str = Field(default="AMD", pattern=r"^[A-Z]{3}$")
    """ISO 4217 code of the currency in which the e-services' costs are entered and the cost
    per transaction is shown."""

    feedback_prompt_window_days: int = Field(default=30, ge=1, le=365)
    """After a completed sign-in a citizen may be asked how easy it was (as often as the
    e-service's sampling rate says), but at most once per e-service within this many days,
    whether they answered or not."""

    feedback_comment_retention_days: int = Field(default=90, ge=1, le=3650)
    """Days a citizen's comment with a rating is kept (for administrators only); then
    `idp janitor` erases it. The score stays, without the comment."""

    metrics_allow: list[str] = Field(default=["127.0.0.1/32", "::1/128"])
    """Networks (CIDR) whose direct connections may read the Prometheus metrics at `/metrics`;
    everyone else gets 404. Empty turns the path off. The address is the client's (the TCP
    peer, or what a proxy of `trusted_proxies` forwarded), so list the scraper, not a proxy."""

    trusted_proxies: list[str] = Field(default=[])
    """Addresses or networks (CIDR) of the reverse proxies in front of the provider. Only for a
    connection from one of them is the client's address read from `X-Forwarded-For` (the
    nearest address in it that is not a trusted proxy). Empty, the default: the header is
    ignored and the TCP peer is the client. The client's address is what the per-address
    sign-in limit, the audit log and `metrics_allow` see; list only proxies that replace or
    append to the header, never a network the public connects from."""

    account_reauth_seconds: int = Field(default=300, ge=30, le=3600)
    """Changing a second factor or the recovery codes on the account pages needs an
    authentication at most this many seconds old; otherwise the citizen signs in again."""

    backchannel_logout_timeout: float = Field(default=3.0, gt=0, le=30)
    """Seconds to wait for an e-service's back-channel logout URI to answer (all e-services are
    told at the same time; redirects are never followed). A failed delivery is retried later."""

    backchannel_logout_retry_for: int = Field(default=86400, ge=60, le=30 * 86400)
    """Seconds during which a failed back-channel logout is retried, with exponential backoff
    (30 s, 1 min, 2 min, ... at most 1 h apart), before it is given up (an `abandoned` event)."""

    backchannel_logout_poll_interval: float = Field(default=5.0, ge=0)
    """Seconds between two looks of each provider process at the logout outbox for deliveries
    due again. 0 turns the background worker off: then only `idp janitor` retries them."""

    audit_seal_interval: float = Field(default=1.0, ge=0)
    """Seconds between two rounds of each provider process's audit sealer, which gives newly
    committed audit entries their place and hashes in the chain (one process at a time). Until
    then an entry is an unsealed row (see docs/security.md). 0 turns the background sealer off:
    then only `idp janitor`, `idp audit seal` and `idp audit verify` seal."""

    client_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    """How long a provider process keeps an e-service's settings (its `clients` row) read for
    the token, introspection and revocation endpoints before reading them again. A change made
    in the same process is seen at once; other processes see it (an e-service disabled, a secret
    rotated) within this many seconds. 0 reads the row on every request."""

    time_zone: str = "Asia/Yerevan"
    """Time zone (IANA name, e.g. `Asia/Yerevan`, `UTC`) in which pages show dates and times.
    The database and the logs keep UTC."""

    @field_validator("issuer")
    @classmethod
    def _issuer_is_a_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError("plain http is allowed only for localhost")
        return value.rstrip("/")

    @field_validator("metrics_allow", "trusted_proxies")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address or network") from None
        return values

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known time zone (an IANA name)") from None
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key_is_long(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.key_activation_delay < self.jwks_max_age:
            raise ValueError("key_activation_delay must be at least jwks_max_age")
        if self.session_idle_timeout > self.session_absolute_timeout:
            raise ValueError("session_idle_timeout must not exceed session_absolute_timeout")
        if self.throttle_max_failures <= self.throttle_lock_after:
            raise ValueError("throttle_max_failures must exceed throttle_lock_after")
        if self.environment == "production":
            if not self.issuer.startswith("https://"):
                raise ValueError("issuer must be https in production")
            if self.secret_key is None:
                raise ValueError("secret_key is required in production")
            if not self.password_hashing_is_strong:
                raise ValueError(WEAK_PASSWORD_HASHING)
        return self

    @property
    def password_hashing_is_strong(self) -> bool:
        """At least one of OWASP's minimum argon2id settings."""
        memory, passes = self.password_hash_memory_kib, self.password_hash_iterations
        return memory >= 47104 or (memory >= 19456 and passes >= 2)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("IDP_CONFIG_FILE")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    # Derived values -------------------------------------------------------------------------

    @cached_property
    def zone(self) -> ZoneInfo:
        """`time_zone` as a time zone."""
        return ZoneInfo(self.time_zone)

    @cached_property
    def effective_database_url(self) -> str:
        """The database URL with the driver spelled out."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'idp.db'}"
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def max_signed_token_lifetime(self) -> int:
        """Longest lifetime of a signed token: a retired key stays published this long."""
        return max(self.id_token_lifetime, self.access_token_lifetime)

    @property
    def json_logs(self) -> bool:
        if self.log_format == "auto":
            return self.environment == "production"
        return self.log_format == "json"

    def unsafe_defaults(self) -> list[str]:
        """What is acceptable on a developer's machine only (logged as warnings at start)."""
        warnings = []
        if self.issuer.startswith("http://"):
            warnings.append("issuer is plain http: acceptable for localhost development only")
        if self.secret_key is None:
            warnings.append("no secret_key configured: using a generated development secret")
        if not self.password_hashing_is_strong:
            warnings.append(WEAK_PASSWORD_HASHING)
        return warnings


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment and the optional TOML file."""
    return Settings(**overrides)

"""The rules of every call the provider makes to an e-service's URL: the connection goes to the
address that was checked (a second DNS answer cannot move it), an IPv6 address embedding a
private IPv4 one is private, a refusal reveals nothing about names, the JWKS cache is bounded
and a key rotation is picked up at once."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.testclient import TestClient

from idp.app import create_app
from idp.runtime import Runtime
from idp.services import registration as registration_service
from tests.conftest import make_settings
from tests.hosts import Documents

from .conftest import EService, register

TAX = "https://tax.example.am/callback"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

Resolve = Callable[..., Any]


@contextlib.contextmanager
def provider(
    tmp_path: Path, database_url: str, **settings: Any
) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = Runtime.build(make_settings(tmp_path, database_url, **settings))
    runtime.keyring.ensure_initial()
    try:
        with TestClient(create_app(runtime=runtime), base_url=runtime.settings.issuer) as http:
            yield http, runtime
    finally:
        runtime.db.dispose()


@pytest.fixture
def production(tmp_path: Path, database_url: str) -> Iterator[tuple[TestClient, Runtime]]:
    """The provider as in production: it calls public addresses only, over https."""
    with provider(tmp_path, database_url, client_fetch_timeout=3) as running:
        yield running


@pytest.fixture
def development(tmp_path: Path, database_url: str) -> Iterator[tuple[TestClient, Runtime]]:
    """The provider may call hosts on this machine (and plain http)."""
    with provider(tmp_path, database_url, client_fetch_private_addresses=True) as running:
        yield running


class Listener:
    """A host on the loopback interface that only counts the connections it accepts."""

    def __init__(self) -> None:
        self.accepted = 0
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.socket.getsockname()[1])
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self.socket.close()


def answering(monkeypatch: pytest.MonkeyPatch, name: str, answers: list[str]) -> list[str]:
    """Make the system resolver answer `name` with `answers` in turn (then the last one again),
    as a DNS server under someone else's control may; returns the answers given so far."""
    given: list[str] = []
    real: Resolve = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (name, name.encode()):
            return real(host, port, *args, **kwargs)
        address = answers[min(len(given), len(answers) - 1)]
        given.append(address)
        if ":" in address:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port), 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return given


def initial_token(runtime: Runtime, uses: int = 10) -> dict[str, str]:
    with runtime.db.transaction() as db:
        issued = registration_service.issue_initial_token(
            db, uses=uses, expires_in=600, actor="test"
        )
    return {"Authorization": f"Bearer {issued.token}"}


def register_with_sector(http: TestClient, bearer: dict[str, str], sector: str) -> Any:
    return http.post(
        "/register",
        json={
            "client_name": "Revenue",
            "redirect_uris": [TAX],
            "subject_type": "pairwise",
            "sector_identifier_uri": sector,
        },
        headers=bearer,
    )


# The address that was checked is the one called ------------------------------------------------


def test_a_second_dns_answer_cannot_send_the_call_to_an_internal_host(
    production: tuple[TestClient, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    http, runtime = production
    internal = Listener()
    try:
        # First a public address (3fff::/20, for documentation, is reached by nobody), then,
        # once the check has passed, this machine.
        given = answering(monkeypatch, "rebind.example.am", ["3fff::1", "127.0.0.1"])
        sector = f"https://rebind.example.am:{internal.port}/sector.json"
        refused = register_with_sector(http, initial_token(runtime), sector)
        assert refused.status_code == 400
        assert internal.accepted == 0
        assert given == ["3fff::1"]  # resolved once: what was checked is what was called
    finally:
        internal.close()


# Which addresses are public --------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "[64:ff9b::7f00:1]",  # NAT64 of 127.0.0.1
        "[64:ff9b::a00:1]",  # NAT64 of 10.0.0.1
        "[64:ff9b:1::a9fe:a9fe]",  # a local NAT64 prefix
        "[::7f00:1]",  # IPv4-compatible 127.0.0.1
        "[::ffff:a9fe:a9fe]",  # IPv4-mapped 169.254.169.254
        "[2002:c0a8:101::1]",  # 6to4 of 192.168.1.1
        "[ff0e::1]",  # multicast
        "224.0.0.251",  # multicast
    ],
)
def test_addresses_that_lead_inside_are_refused_before_any_connection(
    production: tuple[TestClient, Runtime], host: str
) -> None:
    http, runtime = production
    sector = f"https://{host}/sector.json"
    refused = register_with_sector(http, initial_token(runtime), sector)
    assert refused.status_code == 400
    assert refused.json()["error_description"] == (
        f"sector identifier URI could not be fetched: {sector} cannot be used"
    )


def test_a_refusal_says_nothing_about_what_a_name_resolves_to(
    production: tuple[TestClient, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    http, runtime = production
    answering(monkeypatch, "intranet.example.am", ["10.20.30.40"])
    bearer = initial_token(runtime)
    descriptions = {}
    for sector in (
        "https://intranet.example.am/sector.json",  # an internal host
        "https://no-such-host.invalid/sector.json",  # no such name
        "https://localhost/sector.json",  # this machine
    ):
        refused = register_with_sector(http, bearer, sector)
        assert refused.status_code == 400
        descriptions[sector] = refused.json()["error_description"]
    for sector, description in descriptions.items():
        assert description == f"sector identifier URI could not be fetched: {sector} cannot be used"
        for revealing in ("10.20.30.40", "127.0.0.1", "resolve", "non-public", "private"):
            assert revealing not in description


# Over TLS, the pinned connection still speaks to the host by its name ---------------------------


def certificate_authority(folder: Path, host: str) -> tuple[Path, Path, Path]:
    """A CA file (trusted by the provider through SSL_CERT_FILE) and a key pair for `host`."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test e-service CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (folder / "ca.pem", folder / "host.pem", folder / "host.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def key_pair(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)


def public_jwks(*keys: RSAKey) -> dict[str, Any]:
    return {"keys": [dict(k.as_dict(private=False), kid=k.kid) for k in keys]}


def jwt_service(runtime: Runtime, jwks_uri: str) -> EService:
    return register(
        runtime,
        auth_method="private_key_jwt",
        jwks_uri=jwks_uri,
        grant_types=["client_credentials"],
        redirect_uris=[],
        scope="profile",
    )


def client_credentials(http: TestClient, key: RSAKey, service: EService) -> Any:
    now = int(time.time())
    claims = {
        "iss": service.client_id,
        "sub": service.client_id,
        "aud": "http://localhost:8000/token",
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    assertion = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key, algorithms=["RS256"])
    return http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )


def test_a_pinned_https_call_names_the_host_and_checks_its_certificate(
    development: tuple[TestClient, Runtime], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    http, runtime = development
    ca, certificate, private = certificate_authority(tmp_path, "keys.tax.example.am")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    answering(monkeypatch, "keys.tax.example.am", ["127.0.0.1"])
    answering(monkeypatch, "impostor.example.am", ["127.0.0.1"])
    key = key_pair("tls-1")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(certificate, private)
    host = Documents(tls)
    host.publish("/jwks.json", public_jwks(key))
    try:
        genuine = jwt_service(runtime, f"https://keys.tax.example.am:{host.port}/jwks.json")
        assert client_credentials(http, key, genuine).status_code == 200
        assert host.server_names == ["keys.tax.example.am"]
        assert host.hosts == [f"keys.tax.example.am:{host.port}"]
        # The same address under a name its certificate does not carry: refused.
        impostor = jwt_service(runtime, f"https://impostor.example.am:{host.port}/jwks.json")
        refused = client_credentials(http, key, impostor)
        assert refused.status_code == 401
        assert refused.json()["error"] == "invalid_client"
        assert host.hosts == [f"keys.tax.example.am:{host.port}"]  # no request was sent
    finally:
        host.close()


# The JWKS cache -------------------------------------------------------------------------------


def test_the_jwks_cache_is_bounded_least_recently_used_first_out(
    tmp_path: Path, database_url: str
) -> None:
    key = key_pair("bounded")
    documents = Documents()
    with provider(
        tmp_path, database_url, client_fetch_private_addresses=True, client_jwks_cache_entries=2
    ) as (http, runtime):
        services = {
            path: jwt_service(runtime, documents.publish(path, public_jwks(key)))
            for path in ("/a.json", "/b.json", "/c.json")
        }
        for path in ("/a.json", "/b.json", "/a.json", "/c.json", "/a.json", "/b.json"):
            assert client_credentials(http, key, services[path]).status_code == 200, path
    documents.close()
    # a stays in use; b, least recently used when c came, was forgotten and fetched again.
    assert documents.hits == {"/a.json": 1, "/b.json": 2, "/c.json": 1}


def test_a_new_key_is_fetched_at_once_but_at_most_every_ten_seconds(
    development: tuple[TestClient, Runtime],
) -> None:
    http, runtime = development
    old, new, unknown = key_pair("old"), key_pair("new"), key_pair("unknown")
    documents = Documents()
    try:
        service = jwt_service(runtime, documents.publish("/jwks.json", public_jwks(old)))
        assert client_credentials(http, old, service).status_code == 200
        assert client_credentials(http, new, service).status_code == 401  # not published yet
        assert documents.hits["/jwks.json"] == 1  # fetched less than ten seconds ago
        documents.publish("/jwks.json", public_jwks(old, new))
        time.sleep(10.5)
        assert client_credentials(http, new, service).status_code == 200  # rotated: fetched
        assert documents.hits["/jwks.json"] == 2
        assert client_credentials(http, unknown, service).status_code == 401
        assert documents.hits["/jwks.json"] == 2  # not again within ten seconds
    finally:
        documents.close()

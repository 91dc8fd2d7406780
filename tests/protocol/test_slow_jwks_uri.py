"""A `private_key_jwt` e-service whose `jwks_uri` is slow or dead holds up nobody else: anyone
can name it at the token endpoint, so its fetch must not take a request thread or a database
connection, must end at its deadline, must not be repeated while it is in flight, and must
not be retried while its failure is remembered."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from idp.config import Settings
from idp.runtime import Runtime
from tests.hosts import SlowHost
from tests.server import ServerProcess, server_env

from .conftest import EService, Flow, register

DEADLINE = 5.0  # client_fetch_timeout
REQUESTS = 12
THREADS = 4  # database_pool_size, hence the request threads


def client_assertion(key: RSAKey, service: EService, audience: str) -> str:
    now = int(time.time())
    claims = {
        "iss": service.client_id,
        "sub": service.client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key, algorithms=["RS256"])


def token_request(url: str, key: RSAKey, service: EService, audience: str) -> tuple[Any, float]:
    started = time.monotonic()
    response = httpx.post(
        f"{url}/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": client_assertion(key, service, audience),
        },
        timeout=60,
    )
    return response, time.monotonic() - started


def wait_for(condition: Any, seconds: float = 10) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def test_a_slow_or_dead_jwks_uri_holds_up_nothing_else(
    tmp_path: Path, settings: Settings, runtime: Runtime
) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    hosts = {"trickling": SlowHost(trickle=True), "silent": SlowHost(trickle=False)}
    services = {
        name: register(
            runtime,
            auth_method="private_key_jwt",
            jwks_uri=host.url,
            grant_types=["client_credentials"],
            redirect_uris=[],
            scope="profile",
        )
        for name, host in hosts.items()
    }
    ordinary = register(runtime)
    server = ServerProcess(
        server_env(
            settings,
            IDP_DATABASE_POOL_SIZE=str(THREADS),
            IDP_CLIENT_FETCH_PRIVATE_ADDRESSES="true",
            IDP_CLIENT_FETCH_TIMEOUT=str(DEADLINE),
            IDP_CLIENT_FETCH_BACKOFF="600",
        ),
        log=tmp_path / "server.log",
    )
    server.start()
    audience = f"{settings.issuer}/token"
    try:
        for name, host in hosts.items():
            service = services[name]
            with ThreadPoolExecutor(REQUESTS) as pool:
                pending = [
                    pool.submit(token_request, server.url, key, service, audience)
                    for _ in range(REQUESTS)
                ]
                assert host.connected.wait(30), name
                # While every token request waits on the host, others are served at once.
                discovery = httpx.get(f"{server.url}/.well-known/openid-configuration", timeout=20)
                sign_in = httpx.get(
                    f"{server.url}/authorize", params=Flow.new(ordinary).params, timeout=20
                )
                fetch_still_running = host.open == 1
                answers = [future.result() for future in pending]
            assert discovery.status_code == 200, name
            assert sign_in.status_code == 303, name
            assert sign_in.headers["location"].startswith("/login/"), name
            assert fetch_still_running, name  # they did not wait for the fetch to end
            for response, seconds in answers:
                assert response.status_code == 401, (name, response.text)
                assert response.json()["error"] == "invalid_client", name
                assert seconds < 2 * DEADLINE, (name, seconds)  # the host trickles forever
            assert host.connections == 1, name  # one fetch for twelve requests
            assert host.most_open == 1, name
            assert wait_for(lambda host=host: host.open == 0), name  # abandoned at its deadline
            # The failure is remembered: the next request is refused without calling the host.
            again, _ = token_request(server.url, key, service, audience)
            assert again.status_code == 401, name
            assert host.connections == 1, name
    finally:
        server.stop()
        for host in hosts.values():
            host.close()

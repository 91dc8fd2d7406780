"""Certified relying-party libraries accept the provider end to end: openid-client (Node.js)
and Authlib's client (Python), each doing discovery, the authorization code flow with PKCE,
full ID-token validation, userinfo and refresh against a running provider."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from .browser import sign_in_and_consent
from .conftest import REDIRECT_URI, Provider


def test_openid_client_accepts_the_provider(provider: Provider, node_rp: Path) -> None:
    node = shutil.which("node")
    assert node
    rp = subprocess.Popen(
        [
            node,
            str(node_rp),
            provider.url,
            provider.client_id,
            provider.client_secret,
            REDIRECT_URI,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert rp.stdout and rp.stdin
        first = json.loads(rp.stdout.readline() or '{"error": "no output"}')
        assert "authorization_url" in first, first
        callback = sign_in_and_consent(provider, first["authorization_url"])
        rp.stdin.write(callback + "\n")
        rp.stdin.flush()
        result = json.loads(rp.stdout.readline() or '{"error": "no output"}')
    finally:
        rp.kill()
        rp.wait()
    assert "error" not in result, result
    claims = result["id_token_claims"]
    assert claims["iss"] == provider.url
    assert claims["aud"] == provider.client_id
    assert claims["acr"] == "substantial" and "otp" in claims["amr"]
    assert result["userinfo"]["sub"] == claims["sub"]
    assert result["userinfo"]["email"] == "anahit@example.am"
    assert result["rotated"] is True
    assert result["refreshed_claims"]["sub"] == claims["sub"]
    assert result["userinfo_after_refresh"]["given_name"] == "Anahit"


def test_authlib_client_accepts_the_provider(provider: Provider) -> None:
    metadata = httpx.get(f"{provider.url}/.well-known/openid-configuration").json()
    assert metadata["issuer"] == provider.url
    keys = KeySet.import_key_set(httpx.get(metadata["jwks_uri"]).json())
    nonce = secrets.token_urlsafe(16)
    with OAuth2Client(
        provider.client_id,
        provider.client_secret,
        scope="openid profile email",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    ) as rp:
        verifier = secrets.token_urlsafe(48)
        url, state = rp.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        callback = sign_in_and_consent(provider, url)
        returned = parse_qs(urlsplit(callback).query)
        assert returned["iss"] == [provider.url]  # RFC 9207 mix-up defence
        token = rp.fetch_token(
            metadata["token_endpoint"],
            authorization_response=callback,
            code_verifier=verifier,
            state=state,
        )
        decoded = jwt.decode(
            token["id_token"], keys, algorithms=metadata["id_token_signing_alg_values_supported"]
        )
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            options={
                "iss": {"essential": True, "value": provider.url},
                "aud": {"essential": True, "value": provider.client_id},
            },
            params={"nonce": nonce, "access_token": token["access_token"]},
        )
        claims.validate(leeway=5)
        userinfo = rp.get(metadata["userinfo_endpoint"]).json()
        assert userinfo["sub"] == claims["sub"]
        assert userinfo["family_name"] == "Petrosyan"
        refreshed = rp.refresh_token(metadata["token_endpoint"])
        assert refreshed["refresh_token"] != token["refresh_token"]
        assert rp.get(metadata["userinfo_endpoint"]).json()["sub"] == claims["sub"]

"""Complete sign-ins, as a browser makes them: authorize → password → one-time code → the
e-service's token request → userinfo. Also gives the load scripts a single sign-on cookie.

wrk cannot drive this flow: its Lua sees one value per response header name, and a sign-in
sets several cookies in one answer. So a small asyncio client does it, with cookies kept by
hand. Each citizen signs in at most once per run: a one-time code is
accepted once.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

import httpx
import pyotp

VERIFIER = "bench-code-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def authorize_path(redirect_uri: str, scope: str = "openid profile email offline_access") -> str:
    return "/authorize?" + urlencode(
        {
            "response_type": "code",
            "client_id": "bench-web",
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": "bench-state",
            "nonce": "bench-nonce",
            "code_challenge": CHALLENGE.decode(),
            "code_challenge_method": "S256",
        }
    )


class FlowError(Exception):
    pass


def keep_no_cookies(http: httpx.AsyncClient) -> httpx.AsyncClient:
    """Make the client-wide jar keep nothing: each `Browser` holds its own citizen's cookies."""
    http.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return http


@dataclass
class Browser:
    http: httpx.AsyncClient
    cookies: dict[str, str] = field(default_factory=dict)

    async def go(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        header = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers = {"Cookie": header} if header else {}
        response = await self.http.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        for raw in response.headers.get_list("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(raw)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response


def _location(response: httpx.Response) -> str:
    if response.status_code != 303:
        raise FlowError(f"expected 303, got {response.status_code} at {response.request.url}")
    parts = urlsplit(response.headers["location"])
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def sign_in(
    http: httpx.AsyncClient, setup: dict, user: dict, client_secret: str
) -> tuple[Browser, dict, dict]:
    """One complete sign-in; returns the browser (with its session cookie), the tokens and
    what userinfo said of the citizen."""
    browser = Browser(http)
    redirect_uri = setup["redirect_uri"]
    login = _location(await browser.go("GET", authorize_path(redirect_uri)))
    page = await browser.go("GET", login)
    csrf = CSRF.search(page.text)
    if not csrf:
        raise FlowError(f"no form at {login}: {page.status_code}")
    form = {"csrf_token": csrf.group(1), "username": user["username"]}
    form["password"] = setup["password"]
    totp_path = _location(await browser.go("POST", login, data=form))
    page = await browser.go("GET", totp_path)
    csrf = CSRF.search(page.text)
    if not csrf:
        raise FlowError(f"no one-time-code form: {page.status_code}")
    code = pyotp.TOTP(user["totp"]).now()
    form = {"csrf_token": csrf.group(1), "code": code}
    resume = _location(await browser.go("POST", totp_path, data=form))
    back = _location(await browser.go("GET", resume))
    found = re.search(r"[?&]code=([^&]+)", back)
    if not back.startswith(urlsplit(redirect_uri).path) or not found:
        raise FlowError(f"not sent back with a code: {back[:80]}")
    answer = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": found.group(1),
            "redirect_uri": redirect_uri,
            "code_verifier": VERIFIER,
        },
        auth=("bench-web", client_secret),
    )
    if answer.status_code != 200:
        raise FlowError(f"token: {answer.status_code} {answer.text[:120]}")
    tokens = answer.json()
    info = await http.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    if info.status_code != 200 or "sub" not in info.json():
        raise FlowError(f"userinfo: {info.status_code}")
    return browser, tokens, dict(info.json())


@dataclass
class SigninResult:
    completed: int
    failed: int
    seconds: float
    latencies: list[float]
    first_error: str | None

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] * 1000


async def _load(
    base: str, setup: dict, users: list[dict], concurrency: int, seconds: float
) -> SigninResult:
    secret = setup["clients"]["bench-web"]
    queue = list(reversed(users))
    latencies: list[float] = []
    failed = 0
    first_error: str | None = None
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        keep_no_cookies(http)

        async def worker() -> None:
            nonlocal failed, first_error
            while queue and time.monotonic() < deadline:
                user = queue.pop()
                started = time.monotonic()
                try:
                    await sign_in(http, setup, user, secret)
                except (FlowError, httpx.HTTPError, KeyError, ValueError) as exc:
                    failed += 1
                    first_error = first_error or str(exc)
                else:
                    latencies.append(time.monotonic() - started)

        began = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - began
    return SigninResult(len(latencies), failed, elapsed, latencies, first_error)


def run_load(
    base: str, setup: dict, users: list[dict], concurrency: int, seconds: float
) -> SigninResult:
    return asyncio.run(_load(base, setup, users, concurrency, seconds))


def session_for(base: str, setup: dict, user: dict) -> tuple[str, dict]:
    """Sign one citizen in; the `Cookie` header of the session and the tokens issued."""

    async def go() -> tuple[str, dict]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            keep_no_cookies(http)
            browser, tokens, _info = await sign_in(http, setup, user, setup["clients"]["bench-web"])
        cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items() if "session" in k)
        return cookie, tokens

    return asyncio.run(go())


def basic_header(client_id: str, secret: str) -> str:
    """`Authorization: Basic` for client_secret_basic (RFC 6749 §2.3.1)."""
    from urllib.parse import quote_plus

    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()

"""Prometheus metrics: for the operators' networks only, counting what happened."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from idp import events
from idp.app import create_app
from idp.config import Settings
from idp.runtime import Runtime
from tests.conftest import make_settings
from tests.protocol.conftest import Flow, register
from tests.server import ServerProcess, server_env


def _value(text: str, prefix: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def test_metrics_only_for_allowed_networks_and_counts_errors(runtime: Runtime) -> None:
    app = create_app(runtime=runtime)
    with TestClient(app, base_url=runtime.settings.issuer, client=("203.0.113.9", 4000)) as out:
        assert out.get("/metrics").status_code == 404
    with TestClient(app, base_url=runtime.settings.issuer, client=("127.0.0.1", 4000)) as ops:
        before = ops.get("/metrics")
        assert before.status_code == 200
        errors = _value(before.text, 'idp_errors_total{code="invalid_grant"}')
        service = register(runtime)
        refused = ops.post(
            "/token",
            data={"grant_type": "authorization_code", "code": "nope", "redirect_uri": "x"},
            auth=service.basic(),
        )
        assert refused.json()["error"] == "invalid_grant"
        flow = Flow.new(service)
        ops.get("/authorize", params=flow.params, follow_redirects=False)
        after = ops.get("/metrics").text
    assert _value(after, 'idp_errors_total{code="invalid_grant"}') == errors + 1
    assert 'idp_request_duration_seconds_bucket{le="0.005",method="POST",route="/token"' in after
    assert "idp_signins_total" in after and "idp_tokens_issued_total" in after


def test_metrics_see_the_client_a_trusted_proxy_forwarded(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url, trusted_proxies=["10.0.0.0/8"])
    runtime = Runtime.build(settings)
    app = create_app(runtime=runtime)
    try:
        # The proxy on loopback's network passes on a public client: no metrics for it, even
        # when that client writes an allowed address into the header itself.
        with TestClient(app, base_url=settings.issuer, client=("10.0.0.5", 4000)) as proxied:
            spoofed = {"X-Forwarded-For": "127.0.0.1, 203.0.113.9"}
            assert proxied.get("/metrics", headers=spoofed).status_code == 404
            assert proxied.get("/metrics").status_code == 404  # the proxy itself: not allowed
        # A client that is no trusted proxy is its own address, whatever it writes.
        with TestClient(app, base_url=settings.issuer, client=("203.0.113.9", 4000)) as direct:
            assert direct.get("/metrics", headers={"X-Forwarded-For": "::1"}).status_code == 404
        with TestClient(app, base_url=settings.issuer, client=("127.0.0.1", 4000)) as scraper:
            forwarded = {"X-Forwarded-For": "203.0.113.9"}
            assert scraper.get("/metrics", headers=forwarded).status_code == 200
    finally:
        runtime.db.dispose()


def _refuse(server: ServerProcess, times: int) -> None:
    """`times` token requests without client authentication, each on a new connection."""
    for _ in range(times):
        answer = httpx.post(f"{server.url}/token", data={"grant_type": "client_credentials"})
        assert answer.json()["error"] == "invalid_client"


def _refused(server: ServerProcess) -> float:
    scrape = httpx.get(f"{server.url}/metrics")
    assert scrape.status_code == 200
    return _value(scrape.text, 'idp_errors_total{code="invalid_client"}')


def test_every_worker_of_idp_serve_answers_with_the_figures_of_all(
    tmp_path: Path, settings: Settings
) -> None:
    server = ServerProcess(
        server_env(settings), log=tmp_path / "server.log", args=("--workers", "3")
    )
    server.env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # `idp serve` chooses the folder
    server.start()
    try:
        _refuse(server, 30)
        # Whichever worker takes the connection, it counts the 30 refusals of all of them.
        assert {_refused(server) for _ in range(10)} == {30.0}
        assert list((settings.data_dir / "metrics").glob("*.db"))
    finally:
        server.stop()


def test_processes_sharing_a_metrics_folder_add_up(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = server_env(settings, PROMETHEUS_MULTIPROC_DIR=str(folder))
    first = ServerProcess(env, log=tmp_path / "first.log")
    second = ServerProcess(env, log=tmp_path / "second.log")
    first.start()
    second.start()
    try:
        _refuse(first, 3)
        _refuse(second, 4)
        assert _refused(first) == _refused(second) == 7.0
    finally:
        first.stop()
        second.stop()


def test_an_event_is_counted_only_once_its_transaction_commits(runtime: Runtime) -> None:
    labels = {"outcome": "success", "factor": "otp+pwd", "client_id": "tax"}

    def completed() -> float:
        return REGISTRY.get_sample_value("idp_signins_total", labels) or 0.0

    before = completed()
    with pytest.raises(RuntimeError), runtime.db.transaction() as db:
        events.record(db, "signin.completed", user_id=1, client_id="tax", amr=["pwd", "otp"])
        raise RuntimeError("the action failed after its event was written")
    assert completed() == before
    with runtime.db.transaction() as db:
        events.record(db, "signin.completed", user_id=1, client_id="tax", amr=["pwd", "otp"])
        assert completed() == before  # not yet committed
    assert completed() == before + 1

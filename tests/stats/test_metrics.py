"""Prometheus metrics: for the operators' networks only, counting what happened."""

from __future__ import annotations

from starlette.testclient import TestClient

from idp.app import create_app
from idp.runtime import Runtime
from tests.protocol.conftest import Flow, register


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

"""Typed settings: environment, TOML file, safe production defaults, generated reference."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from idp.config import Settings
from idp.logging import configure_logging, get_logger
from idp.settings_doc import reference

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"IDP_{name.upper()}", raising=False)
    monkeypatch.delenv("IDP_CONFIG_FILE", raising=False)


def test_defaults_are_a_working_development_setup() -> None:
    settings = Settings()
    assert settings.issuer == "http://localhost:8000"
    assert settings.effective_database_url == "sqlite:///data/idp.db"
    assert settings.authorization_code_lifetime <= 60
    assert (settings.session_idle_timeout, settings.session_absolute_timeout) == (1800, 43200)
    assert len(settings.unsafe_defaults()) == 2


def test_toml_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "idp.toml"
    config.write_text(
        'issuer = "https://id.example.am/"\n'
        'database_url = "postgresql://idp@db.internal/idp"\n'
        "access_token_lifetime = 300\n"
    )
    monkeypatch.setenv("IDP_CONFIG_FILE", str(config))
    monkeypatch.setenv("IDP_ACCESS_TOKEN_LIFETIME", "120")
    settings = Settings()
    assert settings.issuer == "https://id.example.am"  # trailing slash removed
    assert settings.effective_database_url == "postgresql+psycopg://idp@db.internal/idp"
    assert settings.access_token_lifetime == 120  # the environment wins


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"issuer": "http://id.example.am"}, "plain http"),
        ({"issuer": "https://id.example.am/?x=1"}, "query"),
        ({"issuer": "id.example.am"}, "absolute"),
        ({"environment": "production"}, "https in production"),
        (
            {"environment": "production", "issuer": "https://id.example.am"},
            "secret_key is required",
        ),
        ({"secret_key": "short"}, "at least 32"),
        ({"jwks_max_age": 900, "key_activation_delay": 60}, "key_activation_delay"),
        ({"authorization_code_lifetime": 3600}, "less than or equal to 600"),
        ({"unknown_setting": 1}, "Extra inputs"),
        ({"trusted_proxies": ["10.0.0.0/8", "proxy.internal"]}, "not an IP address or network"),
        ({"metrics_allow": ["127.0.0.1/33"]}, "not an IP address or network"),
    ],
)
def test_unsafe_or_inconsistent_settings_are_refused(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("memory_kib", "iterations", "strong"),
    [(47104, 2, True), (47104, 1, True), (19456, 2, True), (19456, 1, False), (8192, 5, False)],
)
def test_password_hashing_below_owasps_minimum_is_refused_in_production(
    memory_kib: int, iterations: int, strong: bool
) -> None:
    costs = {"password_hash_memory_kib": memory_kib, "password_hash_iterations": iterations}
    production = {"environment": "production", "issuer": "https://id.example.am"}
    production["secret_key"] = "s" * 40
    if strong:
        assert Settings(**production, **costs).unsafe_defaults() == []  # type: ignore[arg-type]
    else:
        with pytest.raises(ValidationError, match="below OWASP's minimum"):
            Settings(**production, **costs)  # type: ignore[arg-type]
    # On a developer's machine (and in the tests) cheaper hashing is allowed, with a warning.
    warned = any("OWASP" in warning for warning in Settings(**costs).unsafe_defaults())  # type: ignore[arg-type]
    assert warned is not strong


def test_production_with_https_and_a_secret_is_accepted() -> None:
    settings = Settings(
        environment="production", issuer="https://id.example.am", secret_key="s" * 40
    )
    assert settings.unsafe_defaults() == []
    assert settings.json_logs


def test_configuration_reference_is_generated_and_up_to_date() -> None:
    text = reference()
    for name, field in Settings.model_fields.items():
        assert f"`IDP_{name.upper()}`" in text
        assert field.description, f"setting {name} has no docstring"
    committed = (REPO / "docs" / "configuration.md").read_text()
    assert committed == text, "run `idp config reference > docs/configuration.md`"


def test_logs_never_carry_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True, level="INFO")
    try:
        get_logger("idp.test").info(
            "token issued", client_id="tax", access_token="at-123", password="hunter2hunter2"
        )
        err = capsys.readouterr().err
        assert '"client_id": "tax"' in err
        assert "at-123" not in err and "hunter2hunter2" not in err
        assert err.count("[redacted]") == 2
    finally:
        configure_logging(json=False, level="WARNING")
        logging.getLogger().setLevel(logging.WARNING)
